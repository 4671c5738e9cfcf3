//! The audit on a CelebA folder: a task classifier trained on the train split, audited on the
//! test split by the protected attribute, then de-biased with complementary latents of a VAE
//! trained on the same images (Ramaswamy et al. 2021 with a VAE in place of their GAN).

use std::path::Path;

use ppl::models::data::celeba::{Celeba, CropResize, Split};
use ppl::models::data::image::PixelScale;
use ppl::models::report::table::MarkdownReport;
use ppl::models::report::write_json;
use ppl::prelude::*;
use serde_json::{json, Value};

use ppl::models::fairness::latent_debias::LabelledImages;

use crate::debias;
use crate::progress::note;
use crate::Options;

/// Image side for CelebA (the loader crops 148 and resizes).
const SIZE: usize = 32;

fn rows(set: &Celeba, split: Split, limit: usize) -> Vec<usize> {
    let mut r = set.split(split);
    if limit > 0 {
        r.truncate(limit);
    }
    r
}

fn labelled(
    set: &Celeba,
    rows: &[usize],
    task: &str,
    protected: &str,
    device: &Device,
) -> Result<LabelledImages> {
    let table = set.attributes();
    let read = |name: &str| -> Result<Vec<bool>> {
        rows.iter()
            .map(|&i| {
                table.get(i, name).ok_or_else(|| {
                    Error::usage(format!("CelebA: no attribute {name:?} for row {i}"))
                })
            })
            .collect()
    };
    LabelledImages::new(
        set.images(rows, PixelScale::Unit, device)?,
        read(task)?,
        read(protected)?,
    )
}

pub fn audit(opts: &Options, root: &Path, device: &Device) -> Result<()> {
    let set = Celeba::open(
        root,
        CropResize {
            crop: 148,
            size: SIZE,
        },
    )?;
    for name in [&opts.task, &opts.protected] {
        if set.attributes().column(name).is_none() {
            return Err(Error::usage(format!(
                "--task/--protected: CelebA has no attribute {name:?} (it has {:?})",
                set.attributes().names()
            )));
        }
    }
    let train_rows = rows(&set, Split::Train, opts.limit);
    let test_rows = rows(&set, Split::Test, opts.limit);
    if train_rows.is_empty() || test_rows.is_empty() {
        return Err(Error::usage(format!(
            "{}: the train or test partition is empty",
            root.display()
        )));
    }
    note(format!(
        "reading {} train and {} test images from {} ..",
        train_rows.len(),
        test_rows.len(),
        root.display()
    ));
    let train = labelled(&set, &train_rows, &opts.task, &opts.protected, device)?;
    let test = labelled(&set, &test_rows, &opts.task, &opts.protected, device)?;
    let mut md = MarkdownReport::new(format!(
        "Fairness audit on CelebA: {} by {}",
        opts.task, opts.protected
    ));
    md.paragraph(&format!(
        "{} train and {} test images of {} at {SIZE}×{SIZE} (centre crop 148); {} epochs, \
         seed {}, {} bootstrap resamples.",
        train_rows.len(),
        test_rows.len(),
        root.display(),
        opts.epochs,
        opts.seed,
        opts.resamples
    ));
    let mut json_out = serde_json::Map::new();
    let names = [opts.task.as_str(), opts.protected.as_str()];
    debias::audit_and_debias(
        &mut md,
        &mut json_out,
        &names,
        &train,
        &test,
        SIZE,
        opts,
        device,
    )?;
    json_out.insert(
        "celeba".into(),
        json!({"root": root.display().to_string(), "task": opts.task,
               "protected": opts.protected, "train": train_rows.len(),
               "test": test_rows.len(), "image_size": SIZE}),
    );
    md.write(opts.out.join("report.md"))?;
    write_json(opts.out.join("report.json"), &Value::Object(json_out))?;
    Ok(())
}

/// Writes `--train` training and `--test` test faces of the planted world
/// (`planted_bias_faces(--strength)`) to `dir` in CelebA's layout.
pub fn write_planted(opts: &Options, dir: &Path) -> Result<()> {
    use ppl::models::data::cartoon::export_celeba;
    use ppl::models::fairness::planted::planted_bias_faces;
    let faces = planted_bias_faces(opts.strength)?;
    let train = faces.generate(opts.seed, opts.train);
    // Test faces from the balanced world, as in the cartoon audit: the plant is in training.
    let test = planted_bias_faces(0.0)?.generate(opts.seed + 1, opts.test);
    export_celeba(dir, &train, &test)?;
    println!(
        "wrote {} training faces (strength {}) and {} balanced test faces in CelebA's layout to {}",
        opts.train,
        opts.strength,
        opts.test,
        dir.display()
    );
    Ok(())
}
