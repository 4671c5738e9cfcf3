//! Figures, tables and checkpoints of `models::report`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use models::data::image::{read_png, Image, PixelScale};
use models::report::canvas::{palette, Canvas, Rgb};
use models::report::checkpoint::{fingerprint, Checkpoint, Progress};
use models::report::font::{self, REPLACEMENT};
use models::report::grid::ImageGrid;
use models::report::plot::{
    log_ticks, moving_average, nice_ticks, BarChart, LinePlot, SeriesStyle,
};
use models::report::table::{fmt_interval, fmt_num, fmt_pct, fmt_pm, Align, MarkdownReport, Table};
use ppl_core::optim::{Adam, Optimizer, Sgd};
use ppl_core::params::{Constraint, ParamStore};
use ppl_core::Error;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppl-report-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rgb_at(img: &Image, x: usize, y: usize) -> Rgb {
    let p = img.pixel(x, y).unwrap();
    Rgb(p[0], p[1], p[2])
}

// ---------------------------------------------------------------- font

#[test]
fn every_supported_glyph_is_inked_and_distinct() {
    let mut seen = HashSet::new();
    let mut n = 0;
    for c in font::supported_chars() {
        let g = font::glyph(c).unwrap();
        if c != ' ' {
            assert!(g.ink() > 0, "glyph {c:?} is blank");
        }
        assert_ne!(g, REPLACEMENT, "glyph {c:?} looks like the replacement box");
        assert!(seen.insert(g.rows()), "glyph {c:?} repeats another glyph");
        n += 1;
    }
    // Printable ASCII (95) and six extras.
    assert_eq!(n, 101);
    assert!(font::is_supported('±') && font::is_supported('~'));
    for c in ['é', '€', '\t', '\n', '\u{0}', '字'] {
        assert!(!font::is_supported(c));
        assert_eq!(font::glyph_or_replacement(c), REPLACEMENT);
    }
}

#[test]
fn text_is_drawn_glyph_by_glyph_at_scale() {
    let s = 3;
    let mut c = Canvas::new(60, 40, Rgb::WHITE).unwrap();
    let w = c.text(2, 1, "A\u{e9}", s, Rgb::BLACK);
    assert_eq!(w, font::text_width("Aé", s));
    assert_eq!(w, (2 * font::ADVANCE - 1) * s);
    assert_eq!(font::text_width("", 2), 0);
    for (i, g) in [font::glyph('A').unwrap(), REPLACEMENT].iter().enumerate() {
        let ox = 2 + i * font::ADVANCE * s;
        for gy in 0..font::GLYPH_HEIGHT {
            for gx in 0..font::GLYPH_WIDTH {
                let want = if g.is_set(gx, gy) {
                    Rgb::BLACK
                } else {
                    Rgb::WHITE
                };
                for (dx, dy) in [(0, 0), (s - 1, s - 1)] {
                    let (x, y) = (ox + gx * s + dx, 1 + gy * s + dy);
                    assert_eq!(c.pixel(x, y), Some(want), "glyph {i} at ({gx}, {gy})");
                }
            }
        }
    }
}

// ---------------------------------------------------------------- ticks

#[test]
fn nice_ticks_are_exact_on_known_ranges() {
    let t = nice_ticks(0.0, 1.0, 5).unwrap();
    assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    assert_eq!(t.labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    assert_eq!((t.lo, t.hi, t.step), (0.0, 1.0, 0.2));

    let t = nice_ticks(-3.7, 12.2, 5).unwrap();
    assert_eq!(t.values, vec![-5.0, 0.0, 5.0, 10.0, 15.0]);
    assert_eq!(t.labels, ["-5", "0", "5", "10", "15"]);

    let t = nice_ticks(0.0, 1000.0, 5).unwrap();
    assert_eq!(t.values, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);

    let t = nice_ticks(0.001, 0.0042, 4).unwrap();
    assert_eq!(t.values, vec![0.001, 0.002, 0.003, 0.004, 0.005]);
    assert_eq!(t.labels[2], "0.003");

    let t = nice_ticks(0.31, 2.9, 6).unwrap();
    assert_eq!(t.values, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
    assert_eq!(t.labels[1], "0.5");

    // Tiny and huge steps switch to scientific labels.
    let t = nice_ticks(0.0, 4e-5, 4).unwrap();
    assert_eq!(t.values, vec![0.0, 1e-5, 2e-5, 3e-5, 4e-5]);
    assert_eq!(t.labels, ["0", "1e-5", "2e-5", "3e-5", "4e-5"]);
    let t = nice_ticks(0.0, 3e6, 3).unwrap();
    assert_eq!(t.labels, ["0", "1e6", "2e6", "3e6"]);

    // An empty range widens by 10% of |lo| (by 1 around zero).
    assert_eq!(nice_ticks(5.0, 5.0, 4).unwrap().values, vec![4.5, 5.0, 5.5]);
    assert_eq!(
        nice_ticks(0.0, 0.0, 2).unwrap().values,
        vec![-1.0, 0.0, 1.0]
    );

    assert!(nice_ticks(f64::NAN, 1.0, 5).is_err());
    assert!(nice_ticks(-f64::MAX, f64::MAX, 5).is_err());
    assert!(nice_ticks(2.0, 1.0, 5).is_err());
}

#[test]
fn log_ticks_cover_decades() {
    let t = log_ticks(0.003, 250.0).unwrap();
    assert_eq!(t.values, vec![0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]);
    assert_eq!(t.labels, ["0.001", "0.01", "0.1", "1", "10", "100", "1000"]);
    // Within one decade the 2s and 5s are added.
    let t = log_ticks(1.5, 8.0).unwrap();
    assert_eq!(t.values, vec![1.0, 2.0, 5.0, 10.0]);
    assert_eq!(log_ticks(1e-6, 1e-5).unwrap().labels[0], "1e-6");
    assert!(log_ticks(0.0, 1.0).is_err());
}

#[test]
fn moving_average_is_centred_and_skips_nan() {
    let m = moving_average(&[1.0, 3.0, 5.0, f64::NAN, 9.0], 3);
    assert_eq!(m, vec![2.0, 3.0, 4.0, 7.0, 9.0]);
    // An even window reaches one further back than forward.
    assert_eq!(
        moving_average(&[1.0, 3.0, 5.0, 7.0], 4),
        vec![2.0, 3.0, 4.0, 5.0]
    );
    assert!(moving_average(&[f64::NAN], 2)[0].is_nan());
    assert_eq!(moving_average(&[2.0, 4.0], 0), vec![2.0, 4.0]);
}

// ---------------------------------------------------------------- plots

#[test]
fn line_plot_puts_series_where_the_axes_say() {
    let d = tmpdir("line");
    let plot = LinePlot::new("Flat and ramp")
        .x_label("step")
        .y_label("value")
        .size(640, 400)
        .series("flat", [(0.0, 2.5), (10.0, 2.5)])
        .series("ramp", [(0.0, 0.0), (10.0, 4.0)]);
    let path = d.join("line.png");
    plot.write_png(&path).unwrap();
    let img = read_png(&path).unwrap();
    assert_eq!((img.width(), img.height(), img.channels()), (640, 400, 3));

    let l = plot.layout().unwrap();
    assert_eq!((l.y.lo, l.y.hi), (0.0, 4.0));
    assert_eq!((l.x.lo, l.x.hi), (0.0, 10.0));
    // The axis mapping, written out: data y runs from the bottom of the plot area up.
    let row = |y: f64| {
        (l.top as f64 + (l.y.hi - y) / (l.y.hi - l.y.lo) * l.plot_height as f64).floor() as usize
    };
    let col = |x: f64| {
        (l.left as f64 + (x - l.x.lo) / (l.x.hi - l.x.lo) * l.plot_width as f64).floor() as usize
    };
    for x in [1.0, 3.0, 8.0] {
        assert_eq!(rgb_at(&img, col(x), row(2.5)), palette(0), "flat at x={x}");
        assert_ne!(rgb_at(&img, col(x), row(2.5) + 4), palette(0));
        assert_ne!(rgb_at(&img, col(x), row(2.5) - 4), palette(0));
    }
    for x in [2.0, 5.0, 9.0] {
        assert_eq!(
            rgb_at(&img, col(x), row(0.4 * x)),
            palette(1),
            "ramp at x={x}"
        );
    }
    // Nothing of a series is drawn outside the frame's neighbourhood.
    assert_eq!(rgb_at(&img, 2, 2), Rgb::WHITE);
}

#[test]
fn log_y_maps_decades_evenly_and_rejects_non_positive_values() {
    let plot = LinePlot::new("")
        .log_y(true)
        .series("loss", [(0.0, 10.0), (5.0, 10.0), (6.0, 1.0), (7.0, 100.0)]);
    let l = plot.layout().unwrap();
    assert_eq!((l.y.lo, l.y.hi), (1.0, 100.0));
    let mid = l.top as f64 + l.plot_height as f64 / 2.0;
    assert!((l.map_y(10.0) - mid).abs() < 1e-9);
    let img = plot.render().unwrap().to_image();
    assert_eq!(
        rgb_at(&img, l.map_x(2.0) as usize, mid.floor() as usize),
        palette(0)
    );

    let bad = LinePlot::new("bad")
        .log_y(true)
        .series("s", [(0.0, 1.0), (1.0, -2.0)]);
    assert!(matches!(bad.layout(), Err(Error::Usage(m)) if m.contains("-2")));
    assert!(LinePlot::new("empty")
        .series("s", [(0.0, f64::NAN)])
        .render()
        .is_err());
    assert!(LinePlot::new("tiny")
        .size(50, 40)
        .series_y("s", &[1.0, 2.0])
        .render()
        .is_err());
}

#[test]
fn smoothed_plot_draws_the_average_solid() {
    // A zig-zag whose 2-point moving average is flat at 1.5 after the first point.
    let ys: Vec<f64> = (0..40)
        .map(|i| if i % 2 == 0 { 1.0 } else { 2.0 })
        .collect();
    let raw = SeriesStyle {
        colour: Some(Rgb(1, 2, 3)),
        smooth: false,
        markers: true,
    };
    let shifted: Vec<(f64, f64)> = ys
        .iter()
        .enumerate()
        .map(|(i, y)| (i as f64 + 1.0, y + 2.0))
        .collect();
    let plot = LinePlot::new("")
        .smooth(Some(2))
        .series_y("zig", &ys)
        .series_styled("raw", shifted, raw);
    let l = plot.layout().unwrap();
    let img = plot.render().unwrap().to_image();
    let y = l.map_y(1.5).floor() as usize;
    for x in [10.5, 20.5, 30.5] {
        assert_eq!(rgb_at(&img, l.map_x(x) as usize, y), palette(0));
    }
    // The unsmoothed series keeps its peaks (x = 12 has y = 2 + 2).
    let (px, py) = (l.map_x(12.0) as usize, l.map_y(4.0) as usize);
    assert_eq!(rgb_at(&img, px, py), Rgb(1, 2, 3));
}

#[test]
fn bar_chart_bars_and_whiskers_land_in_their_slots() {
    let chart = BarChart::new("effects", ["a", "b", "c"])
        .y_label("effect")
        .group_with_intervals(
            "model",
            &[1.0, 2.0, -1.0],
            &[(0.5, 1.5), (1.5, 2.5), (-1.5, -0.5)],
        )
        .group("truth", &[1.2, 1.8, -0.8]);
    let d = tmpdir("bar");
    let path = d.join("bar.png");
    chart.write_png(&path).unwrap();
    let img = read_png(&path).unwrap();
    let l = chart.layout().unwrap();
    assert_eq!((img.width(), img.height()), (960, 600));
    assert_eq!((l.y.lo, l.y.hi), (-2.0, 3.0));
    for (cat, v) in [(0usize, 1.2), (1, 1.8), (2, -0.8)] {
        let (x, w) = chart.bar_columns(&l, cat, 1);
        let inside = (l.map_y(v * 0.5)).floor() as usize;
        assert_eq!(rgb_at(&img, (x + w / 2) as usize, inside), palette(1));
        // Beyond the bar's end the background (or a grid line) shows.
        let beyond = l.map_y(v * 1.15).floor() as usize;
        assert_ne!(rgb_at(&img, (x + w / 2) as usize, beyond), palette(1));
    }
    // The whisker of category 1 reaches 2.5, above the bar's top at 2.0.
    let (x, w) = chart.bar_columns(&l, 1, 0);
    let whisker = l.map_y(2.25).floor() as usize;
    let centre = x as usize + (w as usize - 1) / 2;
    let p = rgb_at(&img, centre, whisker);
    assert!(p.0 < 100 && p.1 < 100 && p.2 < 100, "whisker pixel {p:?}");

    let short = BarChart::new("x", ["a", "b"]).group("g", &[1.0]);
    assert!(matches!(short.render(), Err(Error::Usage(m)) if m.contains("1 values for 2")));
    let backwards = BarChart::new("x", ["a"]).group_with_intervals("g", &[1.0], &[(2.0, 0.0)]);
    assert!(backwards.render().is_err());
}

// ---------------------------------------------------------------- grid

#[test]
fn grid_layout_sizes_are_exact() {
    let tile = |v: u8| Image::gray(4, 5, vec![v; 20]).unwrap();
    let mut g = ImageGrid::new(2, 3)
        .unwrap()
        .scale(3)
        .padding(8)
        .text_scale(2)
        .column_headers(["a", "bb", "ccc"])
        .row_labels(["r0", "row1"]);
    g.set(0, 0, tile(10)).unwrap();
    g.set(1, 2, tile(200)).unwrap();
    g.set(0, 1, Image::rgb(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap())
        .unwrap();
    let l = g.layout().unwrap();
    // Label column: the widest label "row1" is (4 * 6 - 1) * 2 = 46 pixels.
    assert_eq!(l.cells_left, 8 + 46 + 8);
    assert_eq!(l.cells_top, 8 + 18 + 8);
    assert_eq!((l.cell_width, l.cell_height), (12, 15));
    assert_eq!(l.width, 62 + 3 * 12 + 2 * 8 + 8);
    assert_eq!(l.height, 34 + 2 * 15 + 8 + 8);
    assert_eq!(l.cell_origin(1, 2), (62 + 2 * 20, 34 + 23));

    let d = tmpdir("grid");
    g.write_png(d.join("g.png")).unwrap();
    let img = read_png(d.join("g.png")).unwrap();
    assert_eq!((img.width(), img.height()), (l.width, l.height));
    let (x, y) = l.cell_origin(1, 2);
    assert_eq!(rgb_at(&img, x, y), Rgb(200, 200, 200));
    assert_eq!(rgb_at(&img, x + 11, y + 14), Rgb(200, 200, 200));
    // The 2x1 tile, scaled to 6x3, is centred in its 12x15 cell.
    let (x, y) = l.cell_origin(0, 1);
    assert_eq!(rgb_at(&img, x + 3, y + 6), Rgb(255, 0, 0));
    assert_eq!(rgb_at(&img, x + 8, y + 8), Rgb(0, 0, 255));
    assert_eq!(rgb_at(&img, x, y), Rgb::WHITE);
    // An empty cell is light grey.
    let (x, y) = l.cell_origin(1, 0);
    assert_eq!(rgb_at(&img, x + 5, y + 5), Rgb(235, 235, 235));

    // No title, labels or headers: just padding around the cells.
    let mut bare = ImageGrid::new(1, 1).unwrap().padding(2);
    bare.set(0, 0, tile(0)).unwrap();
    let l = bare.layout().unwrap();
    assert_eq!((l.width, l.height), (4 + 4, 5 + 4));

    assert!(g.set(2, 0, tile(0)).is_err());
    assert!(ImageGrid::new(0, 3).is_err());
    assert!(ImageGrid::new(1, 1).unwrap().render().is_err());
    let mut crowded = ImageGrid::new(1, 1).unwrap().column_headers(["a", "b"]);
    crowded.set(0, 0, tile(1)).unwrap();
    assert!(crowded.layout().is_err());
}

#[test]
fn grid_rows_fill_from_tensor_batches() {
    let batch = Tensor::arange(0f32, 24.0, &Device::Cpu)
        .unwrap()
        .reshape((3, 1, 2, 4))
        .unwrap();
    let mut g = ImageGrid::new(1, 3).unwrap().padding(0).scale(1);
    g.set_row(0, &batch, PixelScale::Byte).unwrap();
    let img = g.render().unwrap();
    assert_eq!((img.width(), img.height()), (12, 2));
    // Column 2, pixel (1, 3): value 2 * 8 + 1 * 4 + 3 = 23.
    assert_eq!(rgb_at(&img, 8 + 3, 1), Rgb(23, 23, 23));
    assert!(g
        .set_row(0, &batch.narrow(0, 0, 2).unwrap(), PixelScale::Byte)
        .is_err());
}

// ---------------------------------------------------------------- markdown

#[test]
fn markdown_table_text_is_exact() {
    let mut t = Table::new(["model", "MAE", "95% CI", "ok"])
        .numeric()
        .align(3, Align::Center);
    t.row([
        "Full",
        &fmt_num(0.12345, 3),
        &fmt_interval(0.1, 0.15, 2),
        "yes",
    ])
    .unwrap();
    t.row([
        "Indep|A",
        &fmt_num(-0.0001, 2),
        &fmt_interval(-1.0, 2.5, 2),
        "no",
    ])
    .unwrap();
    // The escaped pipe counts two characters; each column is as wide as its widest cell.
    let want = "\
| model    |   MAE |        95% CI |  ok   |
| :------- | ----: | ------------: | :---: |
| Full     | 0.123 |  [0.10, 0.15] |  yes  |
| Indep\\|A |  0.00 | [-1.00, 2.50] |  no   |
";
    assert_eq!(t.to_markdown(), want);
    assert_eq!(t.len(), 2);
    assert!(t.row(["only one"]).is_err());

    assert_eq!(fmt_pm(0.4123, 0.031, 3), "0.412 ± 0.031");
    assert_eq!(fmt_pct(0.1234, 1), "12.3%");
    assert_eq!(fmt_num(f64::NAN, 2), "NaN");
    assert_eq!(fmt_num(f64::NEG_INFINITY, 2), "-inf");
    assert_eq!(fmt_num(-2.5, 0), "-2");
}

#[test]
fn markdown_report_text_is_exact() {
    let d = tmpdir("md");
    let mut t = Table::new(["a", "b"]);
    t.row(["1", "2"]).unwrap();
    let mut r = MarkdownReport::new("Run");
    r.section("Training")
        .paragraph("Loss fell.\n")
        .image("loss [log]", "figures/loss curve.png")
        .subsection("Numbers")
        .table(&t)
        .bullets(["one", "two"])
        .code("sh", "cargo run ```x```");
    let want = "# Run\n\n## Training\n\nLoss fell.\n\n![loss  log ](<figures/loss curve.png>)\n\n\
### Numbers\n\n| a    | b    |\n| :--- | :--- |\n| 1    | 2    |\n\n- one\n- two\n\n\
````sh\ncargo run ```x```\n````\n";
    assert_eq!(r.to_markdown(), want);
    r.write(d.join("report.md")).unwrap();
    assert_eq!(std::fs::read_to_string(d.join("report.md")).unwrap(), want);
    models::report::write_json(
        d.join("report.json"),
        &serde_json::json!({"mae": 0.5, "bad": f64::NAN}),
    )
    .unwrap();
    let back: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(back["mae"], 0.5);
    assert!(back["bad"].is_null());
}

// ---------------------------------------------------------------- checkpoints

fn trained(seed_values: &[f32]) -> (ParamStore, Adam) {
    let store = ParamStore::new();
    let w = Tensor::new(seed_values, &Device::Cpu).unwrap();
    store
        .get_or_init("w", Some(Box::new(move || Ok(w))), Constraint::Real)
        .unwrap();
    let s = Tensor::new(&[0.7f64, 1.3], &Device::Cpu).unwrap();
    store
        .get_or_init("scale", Some(Box::new(move || Ok(s))), Constraint::Positive)
        .unwrap();
    let mut adam = Adam::new(0.01);
    for _ in 0..3 {
        let w = store.get("w").unwrap().unwrap();
        let s = store.get("scale").unwrap().unwrap();
        let loss = (w.sqr().unwrap().sum_all().unwrap()
            + s.log()
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        adam.step(&store, &grads).unwrap();
    }
    (store, adam)
}

fn param_bits(store: &ParamStore) -> Vec<(String, Vec<u64>)> {
    store
        .entries()
        .into_iter()
        .map(|(n, e)| {
            let t = e.var.as_tensor().to_dtype(candle_core::DType::F64).unwrap();
            let bits = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            (n, bits.into_iter().map(f64::to_bits).collect())
        })
        .collect()
}

fn state_bits(o: &dyn Optimizer) -> Vec<(String, Vec<u64>)> {
    o.state_tensors()
        .unwrap()
        .into_iter()
        .map(|(n, t)| {
            let t = t.to_dtype(candle_core::DType::F64).unwrap();
            let bits = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            (n, bits.into_iter().map(f64::to_bits).collect())
        })
        .collect()
}

fn folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn checkpoint_round_trip_is_bit_identical() {
    let d = tmpdir("ckpt-rt");
    let fp = fingerprint(&("deepscm", 0.01, 3u32)).unwrap();
    assert_eq!(fp.len(), 16);
    assert_eq!(fp, fingerprint(&("deepscm", 0.01, 3u32)).unwrap());
    assert_ne!(fp, fingerprint(&("deepscm", 0.02, 3u32)).unwrap());
    let ckpt = Checkpoint::new(&d, fp.clone());
    assert!(!ckpt.exists());
    assert_eq!(ckpt.load(&ParamStore::new(), None).unwrap(), None);

    let (store, adam) = trained(&[0.1, -1e-30, 3.0e7, f32::MIN_POSITIVE]);
    let mut progress = Progress {
        epoch: 2,
        step: 3,
        loss_history: vec![0.1 + 0.2, 1e-300, -7.25],
        ..Progress::default()
    };
    progress.extra.insert("best".into(), serde_json::json!(0.3));
    ckpt.save(&store, Some(&adam), &progress).unwrap();
    assert!(ckpt.exists());

    let fresh = ParamStore::new();
    let mut adam2 = Adam::new(0.01);
    let back = ckpt.load(&fresh, Some(&mut adam2)).unwrap().unwrap();
    assert_eq!(back, progress);
    assert_eq!(back.loss_history[0].to_bits(), (0.1f64 + 0.2).to_bits());
    assert_eq!(param_bits(&fresh), param_bits(&store));
    assert_eq!(
        fresh.entry("scale").unwrap().constraint,
        Constraint::Positive
    );
    assert_eq!(state_bits(&adam2), state_bits(&adam));

    // Loading into the trained store itself writes the same values in place.
    let (other, mut adam3) = trained(&[5.0, 5.0, 5.0, 5.0]);
    ckpt.load(&other, Some(&mut adam3)).unwrap();
    assert_eq!(param_bits(&other), param_bits(&store));

    // A second save replaces the first generation; NaN losses come back as NaN.
    progress.loss_history.push(f64::NAN);
    progress.step = 4;
    ckpt.save(&store, Some(&adam), &progress).unwrap();
    let names: Vec<String> = folder(&d).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "checkpoint.json",
            "optim-1.safetensors",
            "params-1.safetensors"
        ]
    );
    let back = ckpt.load(&ParamStore::new(), None).unwrap().unwrap();
    assert_eq!(back.step, 4);
    assert!(back.loss_history[3].is_nan());
}

#[test]
fn mismatched_or_damaged_checkpoints_change_nothing() {
    let d = tmpdir("ckpt-bad");
    let (store, adam) = trained(&[1.0, 2.0]);
    let ckpt = Checkpoint::new(&d, "config-a");
    ckpt.save(&store, Some(&adam), &Progress::default())
        .unwrap();
    let files = folder(&d);

    // Another configuration: an error naming the JSON file; store, optimiser and files kept.
    let (target, mut target_adam) = trained(&[9.0, 9.0]);
    let (p0, s0) = (param_bits(&target), state_bits(&target_adam));
    let other = Checkpoint::new(&d, "config-b");
    match other.load(&target, Some(&mut target_adam)) {
        Err(Error::Parse { path, reason, .. }) => {
            assert_eq!(path, d.join("checkpoint.json"));
            assert!(
                reason.contains("config-a") && reason.contains("config-b"),
                "{reason}"
            );
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert_eq!(
        (param_bits(&target), state_bits(&target_adam)),
        (p0.clone(), s0.clone())
    );
    assert_eq!(folder(&d), files);

    // A different optimiser kind is refused before anything is loaded.
    let mut sgd = Sgd::new(0.1);
    assert!(ckpt.load(&target, Some(&mut sgd)).is_err());
    assert_eq!(param_bits(&target), p0);

    // A truncated parameter file: an error naming it, nothing loaded.
    let params = d.join("params-0.safetensors");
    let bytes = std::fs::read(&params).unwrap();
    std::fs::write(&params, &bytes[..bytes.len() - 5]).unwrap();
    let empty = ParamStore::new();
    match ckpt.load(&empty, None) {
        Err(Error::Parse { path, .. }) => assert_eq!(path, params),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(empty.is_empty());
    match ckpt.load(&target, Some(&mut target_adam)) {
        Err(Error::Parse { path, .. }) => assert_eq!(path, params),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert_eq!((param_bits(&target), state_bits(&target_adam)), (p0, s0));
    std::fs::write(&params, &bytes).unwrap();

    // A corrupt JSON file: an error naming it.
    std::fs::write(d.join("checkpoint.json"), b"{\"format\": ").unwrap();
    match ckpt.load(&ParamStore::new(), None) {
        Err(Error::Parse { path, .. }) => assert_eq!(path, d.join("checkpoint.json")),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// Writes one figure of each kind for a person to look at:
/// `cargo test -p models --test report -- --ignored demo_figures` (into /tmp/report-demo).
#[test]
#[ignore = "writes demonstration figures for visual inspection"]
fn demo_figures() {
    let d = PathBuf::from("/tmp/report-demo");
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = 12345u64;
    let mut noise = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let train: Vec<f64> = (1..=400)
        .map(|i| 3.0 * (-(i as f64) / 80.0).exp() + 0.25 + 0.15 * noise())
        .collect();
    let valid: Vec<(f64, f64)> = (1..=20)
        .map(|k| {
            let i = k as f64 * 20.0;
            (i, 3.0 * (-i / 90.0).exp() + 0.32 + 0.03 * noise())
        })
        .collect();
    LinePlot::new("DeepSCM training loss")
        .x_label("step")
        .y_label("negative ELBO / pixel")
        .smooth(Some(15))
        .series_y("train", &train)
        .series_styled(
            "validation",
            valid,
            SeriesStyle {
                smooth: false,
                markers: true,
                ..SeriesStyle::default()
            },
        )
        .write_png(d.join("loss.png"))
        .unwrap();
    LinePlot::new("Loss (log scale)")
        .x_label("epoch")
        .y_label("loss")
        .log_y(true)
        .series_y(
            "Full",
            &(1..=50)
                .map(|i| 50.0 / (i as f64).powf(1.5))
                .collect::<Vec<_>>(),
        )
        .series_y(
            "Independent",
            &(1..=50).map(|i| 40.0 / (i as f64)).collect::<Vec<_>>(),
        )
        .series_y(
            "Conditional",
            &(1..=50)
                .map(|i| 45.0 / (i as f64).powf(1.2))
                .collect::<Vec<_>>(),
        )
        .write_png(d.join("loss_log.png"))
        .unwrap();
    BarChart::new(
        "Counterfactual effectiveness (MAE, lower is better)",
        ["do(thickness)", "do(intensity)", "do(both)"],
    )
    .y_label("MAE")
    .group_with_intervals(
        "Independent",
        &[0.82, 0.64, 1.1],
        &[(0.74, 0.9), (0.58, 0.71), (1.0, 1.22)],
    )
    .group_with_intervals(
        "Conditional",
        &[0.41, 0.33, 0.55],
        &[(0.36, 0.47), (0.29, 0.38), (0.49, 0.61)],
    )
    .group_with_intervals(
        "Full",
        &[0.22, 0.19, 0.3],
        &[(0.18, 0.26), (0.16, 0.23), (0.26, 0.35)],
    )
    .write_png(d.join("bars.png"))
    .unwrap();
    // Gradient discs of growing thickness as stand-in digits.
    let disc = |r: f64, v: f64| {
        let mut px = vec![0u8; 28 * 28];
        for y in 0..28 {
            for x in 0..28 {
                let dd = ((x as f64 - 13.5).powi(2) + (y as f64 - 13.5).powi(2)).sqrt();
                if (dd - 8.0).abs() < r {
                    px[y * 28 + x] = (v * 255.0) as u8;
                }
            }
        }
        Image::gray(28, 28, px).unwrap()
    };
    let mut g = ImageGrid::new(3, 4)
        .unwrap()
        .scale(3)
        .title("Counterfactuals: do(thickness = t)")
        .column_headers(["factual", "t=1.5", "t=3.0", "t=4.5"])
        .row_labels(["unit 0", "unit 1", "unit 2"]);
    for r in 0..3 {
        let v = 0.5 + 0.25 * r as f64;
        g.set(r, 0, disc(1.0 + r as f64, v)).unwrap();
        for c in 1..4 {
            g.set(r, c, disc(0.75 * c as f64, v)).unwrap();
        }
    }
    g.write_png(d.join("grid.png")).unwrap();
}
