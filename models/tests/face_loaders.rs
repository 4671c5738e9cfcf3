//! The CelebA and Cartoon Set loaders: fixtures written here round-trip, and every malformed
//! file gives a parse error naming the file and the line at fault.

use std::path::{Path, PathBuf};

use candle_core::Device;
use models::data::cartoonset::{self, CartoonSet, ATTRIBUTES, NUM_ATTRIBUTES};
use models::data::celeba::{
    self, AttributeTable, Celeba, CropResize, Split, ATTRIBUTE_FILE, ATTRIBUTE_NAMES, IMAGE_DIR,
    PARTITION_FILE,
};
use models::data::image::{write_atomic, write_png, Image, PixelScale};
use ppl_core::Error;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppl-faces-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that `r` is a parse error naming `path` and `line`, and returns its reason.
fn parse_err<T: std::fmt::Debug>(r: ppl_core::Result<T>, path: &Path, line: usize) -> String {
    match r {
        Err(Error::Parse {
            path: p,
            line: l,
            reason,
        }) => {
            assert_eq!(p, path, "wrong file in: {reason}");
            assert_eq!(l, line, "wrong line in: {reason}");
            reason
        }
        other => panic!(
            "expected a parse error at {}:{line}, got {other:?}",
            path.display()
        ),
    }
}

/// A three-image attribute file in the released layout (40 names, two-space separators).
fn attr_text() -> String {
    let mut t = String::from("3\n");
    t += &ATTRIBUTE_NAMES.join(" ");
    t += " \n";
    for (k, file) in ["000001.jpg", "000002.jpg", "000003.jpg"]
        .iter()
        .enumerate()
    {
        t += file;
        for j in 0..40 {
            // Image k has attribute j iff (j + k) is divisible by 3.
            t += if (j + k) % 3 == 0 { "  1" } else { " -1" };
        }
        t += "\n";
    }
    t
}

#[test]
fn celeba_attributes_round_trip() {
    let dir = tmpdir("attr");
    let p = dir.join(ATTRIBUTE_FILE);
    std::fs::write(&p, attr_text()).unwrap();
    let t = AttributeTable::read(&p).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.names().len(), 40);
    assert_eq!(t.files()[2], "000003.jpg");
    for k in 0..3 {
        for (j, name) in ATTRIBUTE_NAMES.iter().enumerate() {
            assert_eq!(t.get(k, name), Some((j + k) % 3 == 0), "image {k} {name}");
        }
    }
    let x = t
        .tensor(&[0, 2], &["5_o_Clock_Shadow", "Young"], &Device::Cpu)
        .unwrap();
    // Image 0: j = 0 -> 1, j = 39 -> 1; image 2: j = 0 -> 0, j = 39 -> 0 ((39 + 2) % 3 = 2).
    assert_eq!(
        x.to_vec2::<f32>().unwrap(),
        vec![vec![1.0, 1.0], vec![0.0, 0.0]]
    );
    assert!(t.tensor(&[0], &["Wings"], &Device::Cpu).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_celeba_attribute_files_name_file_and_line() {
    let dir = tmpdir("attr-bad");
    let good = attr_text();
    let lines: Vec<&str> = good.lines().collect();
    let with = |k: usize, replacement: &str| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[k] = replacement.to_string();
        l.join("\n") + "\n"
    };
    let row = |values: &str| format!("000002.jpg {values}");
    let ones = vec!["1"; 40];
    let cases: Vec<(&str, String, usize, &str)> = vec![
        ("count", with(0, "three"), 1, "image count"),
        (
            "unknown-name",
            with(1, &lines[1].replace("Young", "Youthful")),
            2,
            "Youthful",
        ),
        (
            "short-row",
            with(3, &row(&ones[..39].join(" "))),
            4,
            "40 values",
        ),
        (
            "non-numeric",
            with(
                3,
                &row(&[&ones[..10], &["x"], &ones[11..]].concat().join(" ")),
            ),
            4,
            "`x`",
        ),
        (
            "zero",
            with(
                4,
                &format!("000003.jpg {}", [&ones[..39], &["0"]].concat().join(" ")),
            ),
            5,
            "1 or -1",
        ),
        ("duplicate-file", with(4, lines[3]), 5, "twice"),
        ("truncated", lines[..4].join("\n") + "\n", 5, "truncated"),
        ("too-many", good.replacen("3\n", "2\n", 1), 5, "more rows"),
        ("empty", String::new(), 1, "empty"),
        ("no-header", "3\n".to_string(), 2, "attribute names"),
    ];
    for (tag, text, line, needle) in cases {
        let p = dir.join(format!("{tag}.txt"));
        std::fs::write(&p, text).unwrap();
        let reason = parse_err(AttributeTable::read(&p), &p, line);
        assert!(reason.contains(needle), "{tag}: {reason}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn celeba_partition_parses_and_rejects_bad_lines() {
    let dir = tmpdir("part");
    let p = dir.join(PARTITION_FILE);
    std::fs::write(&p, "000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n").unwrap();
    let parts = celeba::read_partition(&p).unwrap();
    assert_eq!(
        parts.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        vec![Split::Train, Split::Valid, Split::Test]
    );
    for (tag, text, line) in [
        ("split", "000001.jpg 0\n000002.jpg 3\n", 2),
        ("columns", "000001.jpg 0 1\n", 1),
        ("missing", "000001.jpg 0\n\n000002.jpg\n", 3),
        ("duplicate", "000001.jpg 0\n000001.jpg 1\n", 2),
    ] {
        let q = dir.join(format!("{tag}.txt"));
        std::fs::write(&q, text).unwrap();
        parse_err(celeba::read_partition(&q), &q, line);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 178×218 image whose red channel is the column and green the row (clamped to 255).
fn gradient() -> Vec<u8> {
    let (w, h) = (178usize, 218usize);
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            v.extend([x as u8, y.min(255) as u8, 128]);
        }
    }
    v
}

/// What a centre 148 crop of the gradient resized bilinearly to 64 holds at output (ox, oy):
/// the crop starts at (15, 35); output pixel centres map to source `(o + 0.5) * 148/64 - 0.5`.
fn expected(ox: usize, oy: usize) -> (f64, f64) {
    let s = 148.0 / 64.0;
    (
        15.0 + (ox as f64 + 0.5) * s - 0.5,
        35.0 + (oy as f64 + 0.5) * s - 0.5,
    )
}

fn write_celeba(dir: &Path, jpeg: bool) {
    std::fs::write(dir.join(ATTRIBUTE_FILE), attr_text()).unwrap();
    std::fs::write(
        dir.join(PARTITION_FILE),
        "000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n",
    )
    .unwrap();
    let img_dir = dir.join(IMAGE_DIR);
    std::fs::create_dir_all(&img_dir).unwrap();
    for f in ["000001.jpg", "000002.jpg", "000003.jpg"] {
        let p = img_dir.join(f);
        if jpeg {
            let enc = jpeg_encoder::Encoder::new_file(&p, 100).unwrap();
            enc.encode(&gradient(), 178, 218, jpeg_encoder::ColorType::Rgb)
                .unwrap();
        } else {
            // The loader tells the formats apart by their signatures, not by the name.
            write_png(&p, &Image::rgb(178, 218, gradient()).unwrap()).unwrap();
        }
    }
}

#[test]
fn celeba_images_are_centre_cropped_and_resized() {
    for (jpeg, tol) in [(false, 0.51), (true, 4.0)] {
        let dir = tmpdir(if jpeg { "img-jpeg" } else { "img-png" });
        write_celeba(&dir, jpeg);
        let ds = Celeba::open(&dir, CropResize::default()).unwrap();
        assert_eq!(ds.split(Split::Train), vec![0, 1]);
        assert_eq!(ds.split(Split::Test), vec![2]);
        assert!(ds.split(Split::Valid).is_empty());
        let img = ds.image(0).unwrap();
        assert_eq!((img.width(), img.height(), img.channels()), (64, 64, 3));
        for (ox, oy) in [(0, 0), (31, 17), (63, 63), (10, 50)] {
            let (ex, ey) = expected(ox, oy);
            let p = img.pixel(ox, oy).unwrap();
            assert!(
                (f64::from(p[0]) - ex).abs() <= tol,
                "jpeg={jpeg} ({ox},{oy}) r {} vs {ex}",
                p[0]
            );
            assert!(
                (f64::from(p[1]) - ey).abs() <= tol,
                "jpeg={jpeg} ({ox},{oy}) g {} vs {ey}",
                p[1]
            );
        }
        let t = ds.images(&[0, 2], PixelScale::Unit, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[2, 3, 64, 64]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn celeba_folder_errors_name_the_file() {
    let dir = tmpdir("folder-bad");
    write_celeba(&dir, false);
    // A partition that misses an image of the attribute table.
    let part = dir.join(PARTITION_FILE);
    std::fs::write(&part, "000001.jpg 0\n000002.jpg 0\n").unwrap();
    let reason = parse_err(Celeba::open(&dir, CropResize::default()), &part, 0);
    assert!(reason.contains("000003.jpg"), "{reason}");
    std::fs::write(&part, "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n").unwrap();
    let ds = Celeba::open(&dir, CropResize::default()).unwrap();

    // A corrupt JPEG and a file of neither kind.
    let img = dir.join(IMAGE_DIR).join("000002.jpg");
    write_atomic(&img, &[0xFF, 0xD8, 0xFF, 0x00, 0x13, 0x37]).unwrap();
    parse_err(ds.image(1), &img, 0);
    write_atomic(&img, b"GIF89a").unwrap();
    parse_err(ds.image(1), &img, 0);

    // An image too small for the crop.
    let small = dir.join(IMAGE_DIR).join("000003.jpg");
    write_png(
        &small,
        &Image::rgb(100, 100, vec![0; 100 * 100 * 3]).unwrap(),
    )
    .unwrap();
    let reason = parse_err(ds.image(2), &small, 0);
    assert!(reason.contains("148"), "{reason}");

    // A missing image is an I/O error naming it.
    std::fs::remove_file(dir.join(IMAGE_DIR).join("000001.jpg")).unwrap();
    assert!(matches!(ds.image(0), Err(Error::Io { path, .. }) if path.ends_with("000001.jpg")));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn cartoon_csv(values: &[usize; NUM_ATTRIBUTES]) -> String {
    // Written in reverse order: the loader reads lines by name.
    ATTRIBUTES
        .iter()
        .zip(values)
        .rev()
        .map(|((name, n), v)| format!("\"{name}\", {v}, {n}\n"))
        .collect()
}

/// A 4×4 RGBA image: the left half opaque red, the right half transparent (any colour),
/// except pixel (3, 0) which is half-transparent black.
fn rgba_png(path: &Path) {
    let mut data = Vec::new();
    for y in 0..4 {
        for x in 0..4 {
            data.extend(match (x, y) {
                (3, 0) => [0, 0, 0, 128],
                (0 | 1, _) => [200, 10, 20, 255],
                _ => [7, 7, 7, 0],
            });
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 4, 4);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&data).unwrap();
    }
    write_atomic(path, &bytes).unwrap();
}

#[test]
fn cartoon_set_round_trips() {
    let dir = tmpdir("cartoonset");
    let a: [usize; NUM_ATTRIBUTES] = std::array::from_fn(|i| ATTRIBUTES[i].1 - 1);
    let b: [usize; NUM_ATTRIBUTES] = std::array::from_fn(|i| i % ATTRIBUTES[i].1);
    for (stem, v) in [("cs2", &a), ("cs1", &b)] {
        std::fs::write(dir.join(format!("{stem}.csv")), cartoon_csv(v)).unwrap();
        rgba_png(&dir.join(format!("{stem}.png")));
    }
    let set = CartoonSet::open(&dir).unwrap();
    assert_eq!(set.stems(), &["cs1".to_string(), "cs2".to_string()]);
    assert_eq!(set.attributes(0), Some(&b));
    assert_eq!(set.attributes(1), Some(&a));
    assert_eq!(cartoonset::attribute_index("hair"), Some(9));
    assert_eq!(ATTRIBUTES[9].1, 111);
    let t = set.attributes_tensor(&[1], &Device::Cpu).unwrap();
    assert_eq!(t.to_vec2::<f32>().unwrap()[0][9], 110.0);

    // Alpha is flattened onto white.
    let img = set.image(0, None).unwrap();
    assert_eq!(img.pixel(0, 1).unwrap(), &[200, 10, 20]);
    assert_eq!(img.pixel(2, 1).unwrap(), &[255, 255, 255]);
    // Half-transparent black over white: 255 * 127 / 255 rounded.
    assert_eq!(img.pixel(3, 0).unwrap(), &[127, 127, 127]);
    // Area averaging to 2x2 takes the mean of each 2x2 block.
    let small = set.image(0, Some(2)).unwrap();
    assert_eq!(small.pixel(0, 0).unwrap(), &[200, 10, 20]);
    // Top-right block: three white pixels and one 127 grey: (3 * 255 + 127) / 4 = 223.
    assert_eq!(small.pixel(1, 0).unwrap(), &[223, 223, 223]);
    assert_eq!(small.pixel(1, 1).unwrap(), &[255, 255, 255]);
    let x = set
        .images(&[0, 1], 2, PixelScale::Byte, &Device::Cpu)
        .unwrap();
    assert_eq!(x.dims(), &[2, 3, 2, 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_cartoon_set_files_name_file_and_line() {
    let dir = tmpdir("cartoonset-bad");
    let good: [usize; NUM_ATTRIBUTES] = [0; NUM_ATTRIBUTES];
    let text = cartoon_csv(&good);
    let lines: Vec<&str> = text.lines().collect();
    // Line 9 (1-based) is "hair" since the file is written in reverse: index 17 - 8 = 9.
    assert!(lines[8].contains("\"hair\""));
    let with = |k: usize, r: &str| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[k] = r.to_string();
        l.join("\n") + "\n"
    };
    let cases: Vec<(&str, String, usize, &str)> = vec![
        ("columns", with(8, "\"hair\", 3"), 9, "field"),
        ("non-numeric", with(8, "\"hair\", three, 111"), 9, "three"),
        ("negative", with(8, "\"hair\", -1, 111"), 9, "-1"),
        ("unknown", with(2, "\"nose_ring\", 0, 2"), 3, "nose_ring"),
        ("cardinality", with(8, "\"hair\", 3, 110"), 9, "111"),
        (
            "too-big",
            with(0, "\"eye_eyebrow_distance\", 3, 3"),
            1,
            "not below",
        ),
        ("duplicate", with(1, lines[0]), 2, "twice"),
        ("truncated", lines[..17].join("\n") + "\n", 18, "eye_angle"),
    ];
    for (tag, text, line, needle) in cases {
        let p = dir.join(format!("{tag}.csv"));
        std::fs::write(&p, text).unwrap();
        let reason = parse_err(cartoonset::read_attributes(&p), &p, line);
        assert!(reason.contains(needle), "{tag}: {reason}");
    }
    // A folder with one bad file fails naming that file.
    let set_dir = dir.join("set");
    std::fs::create_dir_all(&set_dir).unwrap();
    let bad = set_dir.join("cs9.csv");
    std::fs::write(&bad, with(8, "\"hair\", 200, 111")).unwrap();
    parse_err(CartoonSet::open(&set_dir), &bad, 9);
    // A CSV without its PNG fails on load with an I/O error naming the PNG.
    std::fs::write(&bad, cartoon_csv(&good)).unwrap();
    let set = CartoonSet::open(&set_dir).unwrap();
    assert!(matches!(set.image(0, None), Err(Error::Io { path, .. }) if path.ends_with("cs9.png")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cartoon_faces_exported_in_celeba_layout_read_back_through_the_celeba_loader() {
    use models::data::cartoon::{export_celeba, Attr, CartoonFaces};
    let dir = tmpdir("cartoon-celeba");
    let faces = CartoonFaces::default();
    let (train, test) = (faces.generate(4, 5), faces.generate(5, 3));
    export_celeba(&dir, &train, &test).unwrap();
    let set = Celeba::open(
        &dir,
        CropResize {
            crop: 148,
            size: 64,
        },
    )
    .unwrap();
    assert_eq!(set.split(Split::Train), vec![0, 1, 2, 3, 4]);
    assert_eq!(set.split(Split::Test), vec![5, 6, 7]);
    for (i, s) in train.iter().chain(&test).enumerate() {
        for a in Attr::ALL {
            assert_eq!(set.attributes().get(i, a.name()), Some(s.attributes.get(a)));
        }
        // 64 → 148 → 64 bilinearly: the face comes back up to interpolation error.
        let back = set.image(i).unwrap();
        let mae = back
            .data()
            .iter()
            .zip(s.image.data())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum::<f64>()
            / back.data().len() as f64;
        assert!(mae < 6.0, "face {i}: mean abs difference {mae}");
    }
    assert!(matches!(
        export_celeba(&dir, &[], &[]),
        Err(Error::Usage(_))
    ));
    std::fs::remove_dir_all(&dir).ok();
}
