//! The Morpho glyph data set: its SCM, measurements, true counterfactuals and files.

use std::path::PathBuf;

use candle_core::Device;
use models::data::image::read_png;
use models::data::morpho::{
    intensity_mechanism, measure, thickness_mechanism, Intervention, MorphoConfig, MorphoGlyphs,
    MorphoSample, ATTRIBUTE_COLUMNS, SIZE,
};
use ppl_core::{rng, Error};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppl-morpho-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// E[i] and Var[i] under the SCM, by the midpoint rule over ε_t ~ Gamma(10, rate 5) on (0, 12]
/// and ε_i ~ N(0, 1) on [−10, 10] (the truncated mass is below 1e-12). A pure-Python run of the
/// same rule gives E[i] = 157.7908, sd[i] = 48.373.
fn intensity_moments() -> (f64, f64) {
    let ln_gamma_10 = (1..10).map(|k| (k as f64).ln()).sum::<f64>(); // ln 9!
    let gamma_pdf = |e: f64| (9.0 * e.ln() - 5.0 * e + 10.0 * 5f64.ln() - ln_gamma_10).exp();
    let (he, hz) = (0.004, 0.02);
    let zs: Vec<(f64, f64)> = (0..1000)
        .map(|k| {
            let z = -10.0 + hz * (k as f64 + 0.5);
            (
                z,
                (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() * hz,
            )
        })
        .collect();
    let (mut m1, mut m2) = (0.0, 0.0);
    for k in 0..3000 {
        let e = he * (k as f64 + 0.5);
        let we = gamma_pdf(e) * he;
        let t = thickness_mechanism(e);
        for &(z, wz) in &zs {
            let i = intensity_mechanism(t, z);
            m1 += we * wz * i;
            m2 += we * wz * i * i;
        }
    }
    (m1, m2 - m1 * m1)
}

#[test]
fn attribute_moments_match_the_scm() {
    // The attributes depend on the noise only, so 20 000 draws need no rendering.
    let cfg = MorphoConfig::default();
    let mut r = rng::from_seed(2024);
    let n = 20_000;
    let (mut ts, mut is) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let z = cfg.sample_noise(&mut r).unwrap();
        let t = thickness_mechanism(z.eps_t);
        ts.push(t);
        is.push(intensity_mechanism(t, z.eps_i));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
    };
    // t = 0.5 + Gamma(10, rate 5): mean 2.5, variance 10/25 = 0.4. Standard errors at n = 20 000:
    // mean 0.0045, variance 0.0046 (Gamma excess kurtosis 6/10); tolerances are about 4.5 SE.
    assert!((mean(&ts) - 2.5).abs() < 0.02, "mean t {}", mean(&ts));
    assert!((var(&ts) - 0.4).abs() < 0.025, "var t {}", var(&ts));
    let (ei, vi) = intensity_moments();
    assert!((ei - 157.7908).abs() < 1e-3, "quadrature E[i] {ei}");
    // sd[i] ≈ 48.4: the standard error of the mean is 0.34; of the variance, under 3%.
    assert!((mean(&is) - ei).abs() < 1.5, "mean i {} vs {ei}", mean(&is));
    assert!(
        (var(&is) / vi - 1.0).abs() < 0.06,
        "var i {} vs {vi}",
        var(&is)
    );
}

#[test]
fn generated_columns_follow_the_mechanisms() {
    let g = MorphoGlyphs::generate(24, 3).unwrap();
    assert_eq!(g.images().dims(), &[24, 1, SIZE, SIZE]);
    let t = g.thickness().to_vec1::<f32>().unwrap();
    let i = g.intensity().to_vec1::<f32>().unwrap();
    let labels = g.labels().to_vec1::<u32>().unwrap();
    for (k, s) in g.samples().iter().enumerate() {
        assert_eq!(s.thickness, thickness_mechanism(s.noise.eps_t));
        assert_eq!(s.intensity, intensity_mechanism(s.thickness, s.noise.eps_i));
        assert_eq!(t[k], s.thickness as f32);
        assert_eq!(i[k], s.intensity as f32);
        assert_eq!(labels[k], u32::from(s.noise.class));
        // Whole grey levels in 0..=255, and the glyph actually drawn.
        assert!(s
            .image
            .iter()
            .all(|&v| v.fract() == 0.0 && (0.0..=255.0).contains(&v)));
        assert!(s.image.iter().filter(|&&v| v > 0.0).count() > 20);
    }
    let d = g.to_dataset().unwrap();
    assert_eq!(d.len(), 24);
    assert_eq!(
        d.column_names().collect::<Vec<_>>(),
        ["thickness", "intensity", "label"]
    );
}

/// Per-glyph tolerances reached over the default glyph distribution (checked on 400 glyphs ×
/// ten thicknesses offline): |Δt| ≤ 0.4 px for t ∈ [2, 5] and ≤ 1 px for t ∈ [1, 2), where a
/// stroke thinner than two pixels never fully covers a pixel and the half-maximum threshold
/// widens it; the mean over glyphs is within 0.1 px for t ≥ 2 and 0.2 px below; intensity within
/// 5 grey levels (exactly 0.5 where nothing clips at 255).
#[test]
fn measurement_recovers_rendered_thickness_and_intensity() {
    let g = MorphoGlyphs::generate(40, 17).unwrap();
    // One glyph of each class.
    let glyphs: Vec<&MorphoSample> = (0..10u8)
        .map(|c| g.samples().iter().find(|s| s.noise.class == c).unwrap())
        .collect();
    let intensities = [64.0, 110.0, 160.0, 210.0, 255.0];
    for &t in &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0] {
        let mut bias = 0.0;
        for (k, s) in glyphs.iter().enumerate() {
            let i = intensities[k % intensities.len()];
            let cf = s.counterfactual(&Intervention::both(t, i)).unwrap();
            let m = measure(&cf.image, SIZE, SIZE).unwrap();
            let tol = if t >= 2.0 { 0.4 } else { 1.0 };
            assert!(
                (m.thickness - t).abs() <= tol,
                "class {k}: t {t} measured {}",
                m.thickness
            );
            assert!(
                (m.intensity - i).abs() <= 5.0,
                "class {k}: i {i} measured {}",
                m.intensity
            );
            bias += (m.thickness - t) / glyphs.len() as f64;
        }
        let tol = if t >= 2.0 { 0.1 } else { 0.2 };
        assert!(bias.abs() <= tol, "t {t}: mean error {bias}");
    }
}

#[test]
fn thickness_measurement_orders_glyphs() {
    // A property the tolerance test cannot see: measurement is monotone in the true thickness.
    let g = MorphoGlyphs::generate(5, 8).unwrap();
    for s in g.samples() {
        let ms: Vec<f64> = [1.5, 2.5, 3.5, 4.5]
            .iter()
            .map(|&t| {
                let cf = s.counterfactual(&Intervention::both(t, 200.0)).unwrap();
                measure(&cf.image, SIZE, SIZE).unwrap().thickness
            })
            .collect();
        assert!(ms.windows(2).all(|w| w[1] > w[0] + 0.5), "{ms:?}");
    }
}

#[test]
fn null_interventions_reproduce_the_factual_glyph_bit_for_bit() {
    let g = MorphoGlyphs::generate(20, 5).unwrap();
    for s in g.samples() {
        for iv in [
            Intervention::thickness(s.thickness),
            Intervention::intensity(s.intensity),
            Intervention::both(s.thickness, s.intensity),
            Intervention::default(),
        ] {
            let cf = s.counterfactual(&iv).unwrap();
            assert_eq!(&cf, s, "{iv:?}");
        }
    }
    let same = g
        .counterfactual(&Intervention::default())
        .unwrap()
        .images()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(
        same,
        g.images().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}

#[test]
fn do_thickness_moves_thickness_and_its_descendant_intensity_only() {
    let g = MorphoGlyphs::generate(12, 6).unwrap();
    for s in g.samples() {
        let cf = s.counterfactual(&Intervention::thickness(4.0)).unwrap();
        assert_eq!(cf.thickness, 4.0);
        // Intensity follows its mechanism with the factual ε_i, and it rises with thickness.
        assert_eq!(cf.intensity, intensity_mechanism(4.0, s.noise.eps_i));
        assert_eq!(cf.intensity > s.intensity, 4.0 > s.thickness);
        // Every exogenous variable is held: class, slant, jitter, ε_t, ε_i.
        assert_eq!(cf.noise, s.noise);
        assert_ne!(cf.image, s.image);
        let m = measure(&cf.image, SIZE, SIZE).unwrap();
        assert!((m.thickness - 4.0).abs() < 0.4, "measured {}", m.thickness);
        assert!((m.intensity - cf.intensity).abs() < 5.0);
    }
}

#[test]
fn do_intensity_leaves_thickness() {
    let g = MorphoGlyphs::generate(12, 7).unwrap();
    for s in g.samples() {
        let cf = s.counterfactual(&Intervention::intensity(100.0)).unwrap();
        assert_eq!(cf.thickness, s.thickness);
        assert_eq!(cf.intensity, 100.0);
        assert_eq!(cf.noise, s.noise);
        let (mf, mc) = (
            measure(&s.image, SIZE, SIZE).unwrap(),
            measure(&cf.image, SIZE, SIZE).unwrap(),
        );
        assert!((mc.intensity - 100.0).abs() <= 5.0, "{}", mc.intensity);
        // Same shape, rescaled: the measured thickness barely moves (rounding and clipping only).
        assert!(
            (mc.thickness - mf.thickness).abs() < 0.2,
            "{mf:?} vs {mc:?}"
        );
    }
}

#[test]
fn interventions_outside_the_domain_name_the_variable() {
    let g = MorphoGlyphs::generate(1, 0).unwrap();
    for (iv, var) in [
        (Intervention::thickness(f64::NAN), "thickness"),
        (Intervention::thickness(0.0), "thickness"),
        (Intervention::intensity(-3.0), "intensity"),
        (Intervention::intensity(256.0), "intensity"),
    ] {
        match g.counterfactual(&iv) {
            Err(Error::InvalidValue { site, .. }) => assert_eq!(site, var),
            other => panic!("{iv:?}: {other:?}"),
        }
    }
}

#[test]
fn the_seed_determines_the_data_set() {
    let a = MorphoGlyphs::generate(16, 9).unwrap();
    let b = MorphoGlyphs::generate(16, 9).unwrap();
    let c = MorphoGlyphs::generate(16, 10).unwrap();
    assert_eq!(a.samples(), b.samples());
    let flat = |g: &MorphoGlyphs| g.images().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&a), flat(&b));
    assert_ne!(flat(&a), flat(&c));
    // Glyph k does not depend on how many are drawn.
    let d = MorphoGlyphs::generate(4, 9).unwrap();
    assert_eq!(d.samples(), &a.samples()[..4]);
    // Classes are all drawn, and a configured subset is respected.
    let cfg = MorphoConfig {
        classes: vec![3, 8],
        ..MorphoConfig::default()
    };
    let e = MorphoGlyphs::generate_with(30, 1, &cfg, &Device::Cpu).unwrap();
    assert!(e
        .samples()
        .iter()
        .all(|s| s.noise.class == 3 || s.noise.class == 8));
    let bad = MorphoConfig {
        classes: vec![10],
        ..MorphoConfig::default()
    };
    assert!(MorphoGlyphs::generate_with(1, 1, &bad, &Device::Cpu).is_err());
}

#[test]
fn export_and_contact_sheet_read_back() {
    let dir = tmpdir("export");
    let cfg = MorphoConfig {
        pixel_noise_std: 3.0,
        ..MorphoConfig::default()
    };
    let g = MorphoGlyphs::generate_with(5, 4, &cfg, &Device::Cpu).unwrap();
    g.export(&dir).unwrap();
    // Every PNG holds exactly the tensor's grey levels.
    for (k, s) in g.samples().iter().enumerate() {
        let img = read_png(dir.join(format!("images/{k:05}.png"))).unwrap();
        assert_eq!((img.width(), img.height(), img.channels()), (SIZE, SIZE, 1));
        let back: Vec<f32> = img.data().iter().map(|&b| f32::from(b)).collect();
        assert_eq!(back, s.image);
    }
    // The attribute table reloads the noise exactly (shortest round-trip floats).
    let text = std::fs::read_to_string(dir.join("attributes.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), ATTRIBUTE_COLUMNS.join(","));
    for (s, line) in g.samples().iter().zip(lines) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), ATTRIBUTE_COLUMNS.len());
        let num = |name: &str| -> f64 {
            let at = ATTRIBUTE_COLUMNS.iter().position(|c| *c == name).unwrap();
            f[at].parse().unwrap()
        };
        assert_eq!(num("label") as u8, s.noise.class);
        assert_eq!(num("thickness"), s.thickness);
        assert_eq!(num("intensity"), s.intensity);
        assert_eq!(num("eps_t"), s.noise.eps_t);
        assert_eq!(num("eps_i"), s.noise.eps_i);
        assert_eq!(num("slant"), s.noise.slant);
        assert_eq!(num("scale_x"), s.noise.jitter.scale_x);
        assert_eq!(num("warp_3"), s.noise.jitter.warp[3]);
    }
    let noise = std::fs::read_to_string(dir.join("pixel_noise.csv")).unwrap();
    let rows: Vec<&str> = noise.lines().collect();
    assert_eq!(rows.len(), 6);
    let second: Vec<f32> = rows[2].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(second[0], 1.0);
    assert_eq!(
        &second[1..],
        g.samples()[1].noise.pixel_noise.as_deref().unwrap()
    );

    // Contact sheet: 5 glyphs in a 3 × 3 grid with 2-pixel padding.
    let sheet = dir.join("sheet.png");
    g.write_contact_sheet(&sheet, None).unwrap();
    let img = read_png(&sheet).unwrap();
    assert_eq!((img.width(), img.height()), (3 * SIZE + 8, 2 * SIZE + 6));
    // Glyph 4 sits in row 1, column 1.
    let (ox, oy) = (2 + SIZE + 2, 2 + SIZE + 2);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let v = img.pixel(ox + x, oy + y).unwrap()[0];
            assert_eq!(f32::from(v), g.samples()[4].image[y * SIZE + x]);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
