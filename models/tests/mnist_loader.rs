//! MNIST IDX and Morpho-MNIST CSV loaders: round trips of hand-built fixtures, and every
//! malformed case reported as a parse error naming the file and line.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use flate2::write::GzEncoder;
use flate2::Compression;
use models::data::mnist::{
    load_split, read_idx_images, read_idx_labels, read_morpho_csv, IdxImages, Split,
};
use ppl_core::Error;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppl-mnist-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// IDX bytes written out by hand from the format's definition (big-endian integers).
fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(pixels);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The file and line of a parse error (any other outcome fails the test).
fn parse_error<T: std::fmt::Debug>(r: Result<T, Error>) -> (PathBuf, usize, String) {
    match r {
        Err(Error::Parse { path, line, reason }) => (path, line, reason),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn pixels(n: usize) -> Vec<u8> {
    (0..n).map(|k| (k * 37 % 256) as u8).collect()
}

#[test]
fn idx_images_and_labels_round_trip_plain_and_gzip() {
    let d = tmpdir("rt");
    let px = pixels(3 * 4 * 5);
    let raw = idx_images(3, 4, 5, &px);
    let want = IdxImages {
        count: 3,
        rows: 4,
        cols: 5,
        data: px.clone(),
    };
    assert_eq!(read_idx_images(put(&d, "a", &raw)).unwrap(), want);
    assert_eq!(read_idx_images(put(&d, "a.gz", &gzip(&raw))).unwrap(), want);
    // The magic decides, not the name: a gzip file without .gz and a plain one with it.
    assert_eq!(read_idx_images(put(&d, "b", &gzip(&raw))).unwrap(), want);
    assert_eq!(read_idx_images(put(&d, "b.gz", &raw)).unwrap(), want);
    assert_eq!(want.image(1).unwrap(), &px[20..40]);
    assert!(want.image(3).is_none());
    let t = want.to_tensor(&Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[3, 1, 4, 5]);
    let flat = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat, px.iter().map(|&b| f32::from(b)).collect::<Vec<_>>());

    let labels = [7u8, 0, 9];
    assert_eq!(
        read_idx_labels(put(&d, "l", &idx_labels(&labels))).unwrap(),
        labels
    );
    let gz = gzip(&idx_labels(&labels));
    assert_eq!(read_idx_labels(put(&d, "l.gz", &gz)).unwrap(), labels);
    // An empty but well-formed file is fine.
    assert_eq!(
        read_idx_labels(put(&d, "e", &idx_labels(&[]))).unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn malformed_idx_files_name_the_file_and_record() {
    let d = tmpdir("bad-idx");
    let px = pixels(3 * 2 * 2);

    // Labels handed to the image reader: bad magic, line 0 (the header).
    let p = put(&d, "labels-as-images", &idx_labels(&[1, 2]));
    let (path, line, why) = parse_error(read_idx_images(&p));
    assert_eq!((path, line), (p, 0));
    assert!(
        why.contains("0x00000801") && why.contains("0x00000803"),
        "{why}"
    );

    let p = put(&d, "short-header", &idx_images(3, 2, 2, &[])[..10]);
    let (path, line, why) = parse_error(read_idx_images(&p));
    assert_eq!((path, line), (p, 0));
    assert!(why.contains("header"), "{why}");

    // Three 2x2 images but 9 pixel bytes: image 3 is the first incomplete record.
    let p = put(&d, "truncated", &idx_images(3, 2, 2, &px[..9]));
    let (path, line, why) = parse_error(read_idx_images(&p));
    assert_eq!((path, line), (p, 3));
    assert!(why.contains("image 3 of 3"), "{why}");

    // The same truncation inside a valid gzip stream.
    let p = put(&d, "truncated.gz", &gzip(&idx_images(3, 2, 2, &px[..5])));
    let (path, line, _) = parse_error(read_idx_images(&p));
    assert_eq!((path, line), (p, 2));

    let mut long = idx_images(3, 2, 2, &px);
    long.push(0);
    let p = put(&d, "trailing", &long);
    let (path, line, why) = parse_error(read_idx_images(&p));
    assert_eq!((path, line), (p, 4));
    assert!(why.contains("1 bytes after"), "{why}");

    // A gzip header followed by garbage, and a gzip stream cut in half.
    let p = put(&d, "garbage.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]);
    let (path, line, why) = parse_error(read_idx_images(&p));
    assert_eq!((path, line), (p, 0));
    assert!(why.contains("gzip"), "{why}");
    let gz = gzip(&idx_images(3, 2, 2, &px));
    let p = put(&d, "cut.gz", &gz[..gz.len() / 2]);
    assert_eq!(parse_error(read_idx_images(&p)).0, p);

    let p = put(&d, "zero-rows", &idx_images(1, 0, 5, &[]));
    assert_eq!(parse_error(read_idx_images(&p)).1, 0);

    // Labels: bad magic, truncated body.
    let p = put(&d, "images-as-labels", &idx_images(1, 1, 1, &[0]));
    let (path, line, why) = parse_error(read_idx_labels(&p));
    assert_eq!((path, line), (p, 0));
    assert!(why.contains("bad magic"), "{why}");
    let mut short = idx_labels(&[1, 2, 3, 4]);
    short.truncate(short.len() - 2);
    let p = put(&d, "labels-short", &short);
    let (path, line, _) = parse_error(read_idx_labels(&p));
    assert_eq!((path, line), (p, 3));

    // A missing file is an I/O error naming it, not a parse error.
    let missing = d.join("nope");
    match read_idx_images(&missing) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

#[test]
fn morpho_csv_both_forms_by_header_name() {
    let d = tmpdir("csv");
    let p = put(
        &d,
        "deepscm.csv",
        b"index,thickness,intensity\n0,2.5,180.25\n1,1.75,90\n\n2,3,255\n",
    );
    let m = read_morpho_csv(&p).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m.index(), &[0, 1, 2]);
    assert_eq!(m.thickness(), &[2.5, 1.75, 3.0]);
    assert_eq!(m.intensity().unwrap(), &[180.25, 90.0, 255.0]);

    let p = put(
        &d,
        "original.csv",
        b"index,area,length,thickness,slant,width,height\r\n\
          0,96.5,41.2,2.31,0.12,12.5,19.0\r\n\
          1,80,35,2.01,-0.3,9,18\r\n",
    );
    let m = read_morpho_csv(&p).unwrap();
    assert_eq!(m.thickness(), &[2.31, 2.01]);
    assert_eq!(m.column("slant").unwrap(), &[0.12, -0.3]);
    assert_eq!(m.column("height").unwrap(), &[19.0, 18.0]);
    assert!(m.intensity().is_none());
    assert_eq!(
        m.names().collect::<Vec<_>>(),
        ["area", "length", "thickness", "slant", "width", "height"]
    );

    // Columns are found by name in any order; a pandas row-index column is skipped; float
    // indices that are whole numbers are accepted.
    let p = put(
        &d,
        "pandas.csv",
        b",intensity,thickness,index\n0,100,2,5.0\n1,120,3,6\n",
    );
    let m = read_morpho_csv(&p).unwrap();
    assert_eq!(m.index(), &[5, 6]);
    assert_eq!(m.thickness(), &[2.0, 3.0]);
    assert_eq!(m.intensity().unwrap(), &[100.0, 120.0]);
    assert_eq!(m.names().collect::<Vec<_>>(), ["intensity", "thickness"]);
}

#[test]
fn malformed_morpho_csv_names_the_file_and_line() {
    let d = tmpdir("bad-csv");
    let cases: [(&str, &[u8], usize, &str); 8] = [
        (
            "wrong-count.csv",
            b"index,thickness,intensity\n0,1,2\n1,2\n",
            3,
            "expected 3 fields",
        ),
        (
            "not-a-number.csv",
            b"index,thickness,intensity\n0,thick,2\n",
            2,
            "`thickness`",
        ),
        (
            "infinite.csv",
            b"index,thickness,intensity\n0,1,2\n1,inf,2\n",
            3,
            "finite",
        ),
        (
            "bad-index.csv",
            b"index,thickness\n0,1\n1.5,2\n",
            3,
            "`index`",
        ),
        (
            "no-header.csv",
            b"0,2.5,180\n1,1.5,90\n",
            1,
            "missing header",
        ),
        (
            "no-thickness.csv",
            b"index,intensity\n0,2\n",
            1,
            "thickness",
        ),
        ("empty.csv", b"", 1, "missing header"),
        (
            "duplicate.csv",
            b"index,thickness,thickness\n0,1,2\n",
            1,
            "twice",
        ),
    ];
    for (name, text, want_line, want_reason) in cases {
        let p = put(&d, name, text);
        let (path, line, reason) = parse_error(read_morpho_csv(&p));
        assert_eq!(path, p, "{name}");
        assert_eq!(line, want_line, "{name}: {reason}");
        assert!(reason.contains(want_reason), "{name}: {reason}");
        // The message shows the file and line, as a user sees it.
        let shown = Error::parse(&path, line, &reason).to_string();
        assert!(
            shown.starts_with(&format!("{}:{line}:", p.display())),
            "{shown}"
        );
    }
}

#[test]
fn a_split_loads_with_its_attributes_and_counts_must_agree() {
    let d = tmpdir("split");
    let px = pixels(2 * 28 * 28);
    put(
        &d,
        "t10k-images-idx3-ubyte.gz",
        &gzip(&idx_images(2, 28, 28, &px)),
    );
    put(&d, "t10k-labels-idx1-ubyte", &idx_labels(&[3, 8]));
    put(
        &d,
        "t10k-morpho.csv",
        b"index,thickness,intensity\n0,2.5,180\n1,3.5,200\n",
    );
    let s = load_split(&d, Split::Test).unwrap();
    assert_eq!(s.images.count, 2);
    assert_eq!(s.labels, vec![3, 8]);
    assert_eq!(s.morpho.unwrap().intensity().unwrap(), &[180.0, 200.0]);

    // One label too few: the labels file is at fault.
    let lp = put(&d, "t10k-labels-idx1-ubyte", &idx_labels(&[3]));
    let (path, line, _) = parse_error(load_split(&d, Split::Test));
    assert_eq!((path, line), (lp, 0));

    // An attribute row pointing past the images: its line is named.
    put(&d, "t10k-labels-idx1-ubyte", &idx_labels(&[3, 8]));
    let cp = put(&d, "t10k-morpho.csv", b"index,thickness\n0,2.5\n\n7,3.5\n");
    let (path, line, why) = parse_error(load_split(&d, Split::Test));
    assert_eq!((path, line), (cp, 4));
    assert!(why.contains("index 7"), "{why}");

    // Without the CSV the split still loads; without the images it is an I/O error.
    std::fs::remove_file(d.join("t10k-morpho.csv")).unwrap();
    assert!(load_split(&d, Split::Test).unwrap().morpho.is_none());
    assert!(matches!(
        load_split(&d, Split::Train),
        Err(Error::Io { .. })
    ));
}
