//! Request bodies as the HTTP receiver decompresses them, with its limits. The first
//! byte picks gzip or zstd, and whether the rest is sent as it is (a hostile body) or
//! compressed here first (a round trip, which must give back exactly the rest when it
//! fits the limit, and a refusal when it does not). Output never passes the limit, and
//! the memory reserved covers it and stays within the limit too.
#![no_main]

use std::io::Write;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use slotel_ingest::http::decompress;
use slotel_ingest::reply::Refusal;

/// A small limit, so that bombs and the limit's edge are both within reach.
const MAX: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let zstd = mode & 1 == 1;
    let body = if mode & 2 == 2 {
        Bytes::from(compress(rest, zstd))
    } else {
        Bytes::copy_from_slice(rest)
    };
    let encoding = if zstd { "zstd" } else { "gzip" };
    let mut reserved = 0usize;
    let out = decompress(body, Some(encoding), MAX, &mut |n| {
        reserved += n;
        Ok(())
    });
    if let Ok(out) = &out {
        assert!(out.len() <= MAX);
        assert!(
            reserved >= out.len() && reserved <= MAX + 1,
            "{reserved} bytes reserved"
        );
    }
    if mode & 2 == 2 {
        match out {
            Ok(out) => assert_eq!(&out[..], rest),
            Err(Refusal::TooLarge(_)) => assert!(rest.len() > MAX),
            Err(e) => panic!(
                "a {encoding} body of {} bytes is refused: {e:?}",
                rest.len()
            ),
        }
    }
});

fn compress(data: &[u8], zstd: bool) -> Vec<u8> {
    if zstd {
        return zstd::encode_all(data, 1).expect("in memory");
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}
