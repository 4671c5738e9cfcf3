//! The cartoon-face data set: the oracle reads back what was rendered, interventions act on
//! descendants only, attribute frequencies match the exact marginals of the CPDs, and the data
//! set is a deterministic function of its seed.

use models::data::cartoon::{
    attribute_regions, export, measure, read_table, render, write_contact_sheet, Attr,
    CartoonConfig, CartoonFaces, CartoonSample, ColourProbs, Cpds, EyeColour, HairColour, SkinTone,
    NUM_ATTRS,
};
use models::data::image::read_png;
use ppl_core::Error;

/// A configuration in which every binary attribute is a fair coin, independent of its
/// parents, so that every combination of attributes appears often.
fn uniform_config() -> CartoonConfig {
    let mut cpds = Cpds::default();
    for a in Attr::ALL {
        let n = 1 << a.parents().len();
        cpds.set_table(a, &vec![0.5; n]).unwrap();
    }
    CartoonConfig {
        cpds,
        colours: ColourProbs::default(),
    }
}

fn oracle_accuracy(faces: &[CartoonSample]) -> Vec<(String, f64)> {
    let mut wrong = vec![0usize; NUM_ATTRS + 3];
    for f in faces {
        let m = measure(&f.image).unwrap().attributes;
        let t = &f.attributes;
        for a in Attr::ALL {
            wrong[a.index()] += usize::from(m.get(a) != t.get(a));
        }
        wrong[NUM_ATTRS] += usize::from(m.eye != t.eye);
        wrong[NUM_ATTRS + 1] += usize::from(m.skin != t.skin);
        wrong[NUM_ATTRS + 2] += usize::from(m.hair != t.hair);
    }
    let names = Attr::ALL
        .iter()
        .map(|a| a.name().to_string())
        .chain(["eye_colour", "skin_tone", "hair_colour"].map(String::from));
    names
        .zip(wrong)
        .map(|(n, w)| (n, 1.0 - w as f64 / faces.len() as f64))
        .collect()
}

#[test]
fn the_oracle_reads_back_every_rendered_attribute() {
    // 250 faces from the default SCM and 250 with every combination equally likely (bald
    // women, moustaches with lipstick, .. are rare under the default CPDs).
    let default = CartoonFaces::default().generate(2024, 250);
    let uniform = CartoonFaces::new(uniform_config())
        .unwrap()
        .generate(2025, 250);
    for (label, faces) in [("default", default), ("uniform", uniform)] {
        for (name, acc) in oracle_accuracy(&faces) {
            assert!(
                acc >= 0.99,
                "{label}: the oracle reads {name} right on only {:.1}% of faces",
                100.0 * acc
            );
        }
    }
}

#[test]
fn the_oracle_locates_the_face_it_reads() {
    // The located frame is what the oracle's region tests rely on: it must be within a
    // fraction of a pixel of the true one.
    for f in CartoonFaces::default().generate(3, 40) {
        let m = measure(&f.image).unwrap();
        let truth = models::data::cartoon::Frame::of(&f.noise.style);
        assert!(
            (m.frame.cx - truth.cx).abs() < 0.4,
            "{:?} vs {truth:?}",
            m.frame
        );
        assert!(
            (m.frame.cy - truth.cy).abs() < 0.4,
            "{:?} vs {truth:?}",
            m.frame
        );
        assert!(
            (m.frame.s - truth.s).abs() < 0.02,
            "{:?} vs {truth:?}",
            m.frame
        );
    }
    let blank = models::data::image::Image::rgb(64, 64, vec![200; 64 * 64 * 3]).unwrap();
    assert!(matches!(measure(&blank), Err(Error::Usage(_))));
    let small = models::data::image::Image::rgb(8, 8, vec![0; 8 * 8 * 3]).unwrap();
    assert!(matches!(measure(&small), Err(Error::Usage(_))));
}

/// `1[u < p(parents)]` read straight from the table with the documented index layout
/// (first parent = most significant bit), independently of `Cpds::solve`.
fn mechanism(cpds: &Cpds, a: Attr, u: f64, values: &[bool; NUM_ATTRS]) -> bool {
    let idx = a
        .parents()
        .iter()
        .fold(0, |acc, p| 2 * acc + usize::from(values[p.index()]));
    u < cpds.table(a)[idx]
}

#[test]
fn interventions_change_only_descendants_and_their_pixels() {
    let gen = CartoonFaces::new(uniform_config()).unwrap();
    let cpds = gen.config().cpds.clone();
    let mut changed_pixels = 0usize;
    for s in gen.generate(77, 30) {
        for a in Attr::ALL {
            for v in [false, true] {
                let cf = gen
                    .counterfactual(&s, &[(a.name(), f64::from(u8::from(v)))])
                    .unwrap();
                assert_eq!(cf.noise, s.noise);
                assert_eq!(cf.attributes.get(a), v);
                let desc = a.descendants();
                for b in Attr::ALL.into_iter().filter(|&b| b != a) {
                    if desc.contains(&b) {
                        // Descendants follow their mechanism with the same noise.
                        let want = mechanism(&cpds, b, s.noise.u[b.index()], &cf.attributes.binary);
                        assert_eq!(cf.attributes.get(b), want, "do({a:?}={v}) -> {b:?}");
                    } else {
                        assert_eq!(
                            cf.attributes.get(b),
                            s.attributes.get(b),
                            "do({a:?}) moved {b:?}"
                        );
                    }
                }
                assert_eq!(
                    (cf.attributes.eye, cf.attributes.skin, cf.attributes.hair),
                    (s.attributes.eye, s.attributes.skin, s.attributes.hair)
                );
                // Pixels outside the regions of the attributes that changed are untouched.
                let changed: Vec<Attr> = Attr::ALL
                    .into_iter()
                    .filter(|&b| cf.attributes.get(b) != s.attributes.get(b))
                    .collect();
                let regions: Vec<[usize; 4]> = changed
                    .iter()
                    .flat_map(|&b| attribute_regions(b, &s.noise.style))
                    .collect();
                let inside = |x: usize, y: usize| {
                    regions
                        .iter()
                        .any(|r| x >= r[0] && x < r[2] && y >= r[1] && y < r[3])
                };
                let mut differ = 0;
                for y in 0..64 {
                    for x in 0..64 {
                        let same = cf.image.pixel(x, y) == s.image.pixel(x, y);
                        if !inside(x, y) {
                            assert!(
                                same,
                                "do({a:?}={v}) changed pixel ({x}, {y}) outside {changed:?}"
                            );
                        }
                        differ += usize::from(!same);
                    }
                }
                // Whenever an attribute changed, the image changed (it is rendered).
                assert_eq!(
                    changed.is_empty(),
                    differ == 0,
                    "do({a:?}={v}): {changed:?}"
                );
                changed_pixels += differ;
            }
        }
    }
    assert!(changed_pixels > 0);
}

#[test]
fn intervening_with_the_factual_value_reproduces_the_sample() {
    let gen = CartoonFaces::default();
    for s in gen.generate(5, 20) {
        for a in Attr::ALL {
            let v = f64::from(u8::from(s.attributes.get(a)));
            assert_eq!(gen.counterfactual(&s, &[(a.name(), v)]).unwrap(), s);
        }
        let all: Vec<(&str, f64)> = Attr::ALL
            .iter()
            .map(|a| (a.name(), f64::from(u8::from(s.attributes.get(*a)))))
            .collect();
        assert_eq!(gen.counterfactual(&s, &all).unwrap(), s);
        let colours = [
            ("eye_colour", s.attributes.eye.index() as f64),
            ("skin_tone", s.attributes.skin.index() as f64),
            ("hair_colour", s.attributes.hair.index() as f64),
        ];
        assert_eq!(gen.counterfactual(&s, &colours).unwrap(), s);
        assert_eq!(gen.counterfactual(&s, &[]).unwrap(), s);
    }
}

#[test]
fn colour_interventions_recolour_only_their_attribute() {
    let gen = CartoonFaces::default();
    let s = gen.sample_at(9, 0);
    let other = (s.attributes.eye.index() + 1) % EyeColour::ALL.len();
    let cf = gen
        .counterfactual(&s, &[("eye_colour", other as f64)])
        .unwrap();
    assert_eq!(cf.attributes.eye.index(), other);
    assert_eq!(cf.attributes.binary, s.attributes.binary);
    assert_eq!(measure(&cf.image).unwrap().attributes.eye.index(), other);
    assert_ne!(cf.image, s.image);
}

#[test]
fn bad_interventions_are_usage_errors() {
    let gen = CartoonFaces::default();
    let s = gen.sample_at(1, 0);
    for bad in [
        vec![("Old", 1.0)],
        vec![("Young", 2.0)],
        vec![("skin_tone", 1.5)],
        vec![("hair_colour", 9.0)],
        vec![("Male", 0.0), ("Male", 1.0)],
    ] {
        let e = gen.counterfactual(&s, &bad).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{bad:?}: {e}");
        assert!(e.to_string().contains(bad[0].0), "{e}");
    }
}

/// Whether `hat` is within 4.5 standard errors of `p` for `n` draws.
fn close(hat: f64, p: f64, n: usize) -> bool {
    (hat - p).abs() <= 4.5 * (p * (1.0 - p) / n as f64).sqrt() + 1e-12
}

/// Each attribute's frequency in `count` (out of `n`) is within [`close`] of `exact`.
fn assert_marginals(count: &[usize], exact: &[f64], n: usize, label: &str) {
    for a in Attr::ALL {
        let hat = count[a.index()] as f64 / n as f64;
        assert!(
            close(hat, exact[a.index()], n),
            "{label}{a:?}: {hat} vs exact {}",
            exact[a.index()]
        );
    }
}

#[test]
fn attribute_frequencies_match_the_exact_marginals() {
    let gen = CartoonFaces::default();
    let cpds = &gen.config().cpds;
    let n = 20_000;
    let noise: Vec<_> = (0..n as u64).map(|i| gen.noise_at(99, i)).collect();

    // Exact P(V = 1) by summing the product of the CPDs over all 2^9 configurations, written
    // out here rather than taken from Cpds::marginals.
    let mut exact = [0.0; NUM_ATTRS];
    for bits in 0..1usize << NUM_ATTRS {
        let v: [bool; NUM_ATTRS] = std::array::from_fn(|i| bits >> i & 1 == 1);
        let p: f64 = Attr::ALL
            .iter()
            .map(|&a| {
                let idx = a
                    .parents()
                    .iter()
                    .fold(0, |acc, q| 2 * acc + usize::from(v[q.index()]));
                let p1 = cpds.table(a)[idx];
                if v[a.index()] {
                    p1
                } else {
                    1.0 - p1
                }
            })
            .product();
        for i in 0..NUM_ATTRS {
            if v[i] {
                exact[i] += p;
            }
        }
    }
    let lib = cpds.marginals();
    for i in 0..NUM_ATTRS {
        assert!((lib[i] - exact[i]).abs() < 1e-12);
    }

    let mut count = [0usize; NUM_ATTRS];
    let mut colours = [[0usize; 5]; 3];
    for z in &noise {
        let a = gen.attributes_of(z, &[]).unwrap();
        for (c, &b) in count.iter_mut().zip(&a.binary) {
            *c += usize::from(b);
        }
        colours[0][a.eye.index()] += 1;
        colours[1][a.skin.index()] += 1;
        colours[2][a.hair.index()] += 1;
    }
    assert_marginals(&count, &exact, n, "");
    let sizes = [
        EyeColour::ALL.len(),
        SkinTone::ALL.len(),
        HairColour::ALL.len(),
    ];
    for (k, &m) in sizes.iter().enumerate() {
        for (c, &hits) in colours[k][..m].iter().enumerate() {
            let hat = hits as f64 / n as f64;
            assert!(close(hat, 1.0 / m as f64, n), "colour {k} value {c}: {hat}");
        }
    }

    // Interventional marginals: do(Male = 1) and do(Smiling = 0) with the same noise.
    for iv in [
        (Attr::Male, true),
        (Attr::Smiling, false),
        (Attr::Young, false),
    ] {
        let want = cpds.interventional_marginals(&[iv]);
        let mut count = [0usize; NUM_ATTRS];
        for z in &noise {
            let a = gen
                .attributes_of(z, &[(iv.0.name(), f64::from(u8::from(iv.1)))])
                .unwrap();
            for (c, &b) in count.iter_mut().zip(&a.binary) {
                *c += usize::from(b);
            }
        }
        assert_marginals(&count, &want, n, &format!("do{iv:?} "));
    }
    // The interventional marginal differs from the observational one where it should:
    // lipstick is a child of Male.
    let d = cpds.interventional_marginals(&[(Attr::Male, true)]);
    assert!((d[Attr::WearingLipstick.index()] - exact[Attr::WearingLipstick.index()]).abs() > 0.1);
}

#[test]
fn the_data_set_is_a_function_of_the_seed() {
    let gen = CartoonFaces::default();
    let a = gen.generate(42, 12);
    let b = gen.generate(42, 12);
    assert_eq!(a, b);
    let c = gen.generate(43, 12);
    assert_ne!(a, c);
    assert_eq!(gen.sample_at(42, 7), a[7]);
    // A face is the render of its noise: re-rendering from the kept noise is exact.
    for s in &a {
        assert_eq!(render(&s.attributes, &s.noise.style), s.image);
        assert_eq!(&gen.from_noise(s.noise).unwrap(), s);
    }
}

#[test]
fn strength_zero_makes_attributes_independent() {
    let cpds = Cpds::default().with_strength(0.0).unwrap();
    // Under independence, P(Bald | do(Male = 1)) equals P(Bald).
    let m = cpds.marginals();
    let d = cpds.interventional_marginals(&[(Attr::Male, true)]);
    assert!((m[Attr::Bald.index()] - d[Attr::Bald.index()]).abs() < 1e-12);
    // Larger strength widens the gap between men and women in lipstick.
    let strong = Cpds::default().with_strength(2.0).unwrap();
    let gap = |c: &Cpds| c.table(Attr::WearingLipstick)[0] - c.table(Attr::WearingLipstick)[1];
    assert!(gap(&strong) > gap(&Cpds::default()));
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ppl-cartoon-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn export_round_trips_images_attributes_and_noise() {
    let gen = CartoonFaces::default();
    let faces = gen.generate(8, 6);
    let dir = tmpdir("export");
    export(&dir, &faces).unwrap();
    let rows = read_table(dir.join("attributes.csv")).unwrap();
    assert_eq!(rows.len(), faces.len());
    for (row, s) in rows.iter().zip(&faces) {
        assert_eq!(row.attributes, s.attributes);
        // The noise is printed so that it reads back bit for bit ...
        assert_eq!(row.noise, s.noise);
        // ... so the image re-renders exactly, and the PNG holds the same pixels.
        assert_eq!(gen.from_noise(row.noise).unwrap().image, s.image);
        assert_eq!(read_png(dir.join(&row.file)).unwrap(), s.image);
    }

    let sheet = dir.join("sheet.png");
    write_contact_sheet(&sheet, &faces, 3).unwrap();
    let img = read_png(&sheet).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (3 * 64 + 4 * 2, 2 * 64 + 3 * 2)
    );
    assert_eq!(
        img.pixel(2, 2).unwrap(),
        faces[0].image.pixel(0, 0).unwrap()
    );

    // A damaged table names its line.
    let text = std::fs::read_to_string(dir.join("attributes.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = lines[3].replacen(",1,", ",2,", 1).replacen(",0,", ",2,", 1);
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    match read_table(&bad) {
        Err(Error::Parse { path, line, .. }) => {
            assert_eq!(path, bad);
            assert_eq!(line, 4);
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_attribute_scm_of_the_runtime_has_the_data_tables() -> Result<(), Error> {
    // Every configuration's probability under the observational and two interventional
    // regimes agrees between the runtime Scm and the data's own Cpds (exact enumeration).
    let cpds = Cpds::default().with_strength(1.7)?;
    let scm = cpds.to_scm()?;
    let names: Vec<&str> = Attr::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(scm.names(), names);
    for actions in [
        vec![],
        vec![(Attr::Male, true)],
        vec![(Attr::Young, false), (Attr::Smiling, true)],
    ] {
        let scm_actions: Vec<(&str, usize)> = actions
            .iter()
            .map(|(a, v)| (a.name(), usize::from(*v)))
            .collect();
        let joint = scm.joint_do(&scm_actions)?;
        // The runtime lists the configurations of positive probability; the rest must have
        // probability zero under the data's tables too.
        let total: f64 = joint.iter().map(|(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let support = 1usize << (NUM_ATTRS - actions.len());
        assert_eq!(joint.len(), support, "{actions:?}");
        for (values, p) in joint {
            let mut v = [false; NUM_ATTRS];
            for (i, x) in values.iter().enumerate() {
                v[i] = *x == 1;
            }
            let want = cpds.joint(&v, &actions);
            assert!((p - want).abs() < 1e-12, "{values:?}: {p} vs {want}");
        }
    }
    Ok(())
}
