// The png_folder fuzz input cut into files after each `IEND` chunk (so that seeds of
// concatenated PNGs become folders of several images). Shared, by `include!`, by the fuzz
// target and by crates/pixelrnn/tests/library/fuzz_regressions.rs, which replays its crashes.
fn split_pngs(data: &[u8]) -> Vec<&[u8]> {
    let mut files = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(8).position(|w| &w[..4] == b"IEND") {
        let (file, tail) = rest.split_at(at + 8);
        files.push(file);
        rest = tail;
    }
    if !rest.is_empty() {
        files.push(rest);
    }
    files
}
