//! Seeded, shuffled minibatches of a data set of tensors.
//!
//! A [`TensorDataset`] is an image tensor `[N, ...]` plus named attribute columns `[N, ...]`
//! (thickness, intensity, labels, ..). [`TensorDataset::batches`] walks it in minibatches moved to
//! a chosen device. The order is a function of the seed and the epoch only, so a training run can
//! be replayed exactly, and each epoch sees a different permutation.

use candle_core::{Device, Tensor};
use ppl_core::rng::{self, Rng};
use ppl_core::{Error, Result};
use rand::Rng as _;

/// Images plus named attribute columns sharing the leading dimension `N`.
#[derive(Debug, Clone)]
pub struct TensorDataset {
    images: Tensor,
    columns: Vec<(String, Tensor)>,
}

impl TensorDataset {
    /// A data set of `images` (`[N, ...]`, at least one dimension) with no attribute columns.
    pub fn new(images: Tensor) -> Result<Self> {
        if images.rank() == 0 {
            return Err(Error::usage(
                "a data set's images need a leading sample dimension, got a scalar",
            ));
        }
        Ok(TensorDataset {
            images,
            columns: Vec::new(),
        })
    }

    /// Adds the attribute column `name` (`[N, ...]`).
    pub fn with_column(mut self, name: impl Into<String>, values: Tensor) -> Result<Self> {
        let name = name.into();
        if self.columns.iter().any(|(n, _)| *n == name) {
            return Err(Error::usage(format!(
                "data set column `{name}` given twice"
            )));
        }
        let n = self.len();
        match values.dims().first() {
            Some(&m) if m == n => {}
            _ => {
                let mut expected = values.dims().to_vec();
                if expected.is_empty() {
                    expected.push(n);
                } else {
                    expected[0] = n;
                }
                return Err(Error::shape(
                    format!("data set column `{name}`"),
                    &expected,
                    values.dims(),
                ));
            }
        }
        self.columns.push((name, values));
        Ok(self)
    }

    /// The number of samples `N`.
    pub fn len(&self) -> usize {
        self.images.dims()[0]
    }

    /// Whether the data set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All images.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// The column `name`, if present.
    pub fn column(&self, name: &str) -> Option<&Tensor> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The column names, in the order they were added.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    /// The minibatches of one epoch (see [`BatchOptions`]). `epoch` selects an independent
    /// permutation of the same seed.
    pub fn batches(&self, opts: &BatchOptions, epoch: u64) -> Result<Batches<'_>> {
        if opts.batch_size == 0 {
            return Err(Error::usage("batch_size must be at least 1"));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        if opts.shuffle {
            let mut r = rng::from_seed(opts.seed);
            // One ChaCha stream per epoch: permutations of different epochs are independent,
            // and epoch k can be replayed without drawing epochs 0..k first.
            r.set_stream(epoch);
            shuffle(&mut order, &mut r);
        }
        let len = if opts.drop_last {
            order.len() - order.len() % opts.batch_size
        } else {
            order.len()
        };
        order.truncate(len);
        Ok(Batches {
            data: self,
            order,
            next: 0,
            batch_size: opts.batch_size,
            device: opts.device.clone(),
        })
    }
}

fn shuffle(order: &mut [usize], r: &mut Rng) {
    // Fisher–Yates, written out so the permutation depends only on this code and the seed.
    for i in (1..order.len()).rev() {
        let j = r.random_range(0..=i);
        order.swap(i, j);
    }
}

/// How to walk a [`TensorDataset`].
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Samples per batch (at least 1).
    pub batch_size: usize,
    /// Whether to permute the samples (by `seed` and the epoch); `false` keeps the stored order.
    pub shuffle: bool,
    /// Whether to drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// The seed of the permutation.
    pub seed: u64,
    /// The device the batches are moved to.
    pub device: Device,
}

impl BatchOptions {
    /// Shuffled batches of `batch_size` on the CPU, seed 0, the last partial batch kept.
    pub fn new(batch_size: usize) -> Self {
        BatchOptions {
            batch_size,
            shuffle: true,
            drop_last: false,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

/// One minibatch: the rows it holds and their images and columns on the chosen device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The rows of the data set in this batch, in batch order.
    pub indices: Vec<usize>,
    /// The images of these rows, `[b, ...]`.
    pub images: Tensor,
    /// The attribute columns of these rows, `[b, ...]`, in the data set's column order.
    pub columns: Vec<(String, Tensor)>,
}

impl Batch {
    /// The column `name` of this batch.
    pub fn column(&self, name: &str) -> Result<&Tensor> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
                Error::usage(format!("batch has no column `{name}`; columns: {names:?}"))
            })
    }

    /// The number of samples in this batch.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch is empty (never true for a batch yielded by [`Batches`]).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The minibatches of one epoch, in order; made by [`TensorDataset::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    data: &'a TensorDataset,
    order: Vec<usize>,
    next: usize,
    batch_size: usize,
    device: Device,
}

impl Batches<'_> {
    /// The number of batches still to come.
    pub fn remaining(&self) -> usize {
        (self.order.len() - self.next).div_ceil(self.batch_size)
    }

    fn gather(&self, t: &Tensor, idx: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_slice(idx, idx.len(), t.device())?;
        // Index on the tensor's own device, then move only the batch.
        let picked = t.index_select(&ids, 0)?;
        Ok(picked.to_device(&self.device)?)
    }

    fn make(&self, rows: &[usize]) -> Result<Batch> {
        let idx = rows
            .iter()
            .map(|&r| u32::try_from(r))
            .collect::<std::result::Result<Vec<u32>, _>>()
            .map_err(|_| Error::usage("data sets beyond 2^32 rows are not supported"))?;
        let images = self.gather(&self.data.images, &idx)?;
        let columns = self
            .data
            .columns
            .iter()
            .map(|(n, t)| Ok((n.clone(), self.gather(t, &idx)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch {
            indices: rows.to_vec(),
            images,
            columns,
        })
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let rows = self.order[self.next..end].to_vec();
        self.next = end;
        Some(self.make(&rows))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let k = self.remaining();
        (k, Some(k))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// A `[n]` f32 column tensor from host values, a convenience for building data sets.
pub fn column_f32(values: &[f32], device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, values.len(), device)?)
}

/// A `[n]` u32 label tensor from host values.
pub fn column_u32(values: &[u32], device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, values.len(), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> TensorDataset {
        let imgs: Vec<f32> = (0..n * 4).map(|v| v as f32).collect();
        let images = Tensor::from_vec(imgs, (n, 2, 2), &Device::Cpu).unwrap();
        let t: Vec<f32> = (0..n).map(|v| v as f32 * 10.0).collect();
        TensorDataset::new(images)
            .unwrap()
            .with_column("t", column_f32(&t, &Device::Cpu).unwrap())
            .unwrap()
    }

    #[test]
    fn every_row_once_with_rows_and_columns_aligned() {
        let d = data(10);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for b in d.batches(&BatchOptions::new(4), 0).unwrap() {
            let b = b.unwrap();
            sizes.push(b.len());
            let t = b.column("t").unwrap().to_vec1::<f32>().unwrap();
            let first = b.images.flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
            for (k, &r) in b.indices.iter().enumerate() {
                assert_eq!(t[k], r as f32 * 10.0);
                assert_eq!(first[k][0], (r * 4) as f32);
            }
            seen.extend(b.indices);
        }
        assert_eq!(sizes, vec![4, 4, 2]);
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(
            seen,
            (0..10).collect::<Vec<_>>(),
            "seed 0 should permute 10 rows"
        );
    }

    #[test]
    fn seeded_epochs_and_drop_last() {
        let d = data(10);
        let order = |seed: u64, epoch: u64| -> Vec<usize> {
            let mut o = BatchOptions::new(3);
            o.seed = seed;
            d.batches(&o, epoch)
                .unwrap()
                .flat_map(|b| b.unwrap().indices)
                .collect()
        };
        assert_eq!(order(5, 0), order(5, 0));
        assert_ne!(order(5, 0), order(5, 1));
        assert_ne!(order(5, 0), order(6, 0));
        let mut o = BatchOptions::new(3);
        o.drop_last = true;
        o.shuffle = false;
        let b: Vec<Vec<usize>> = d
            .batches(&o, 0)
            .unwrap()
            .map(|b| b.unwrap().indices)
            .collect();
        assert_eq!(b, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8]]);
    }

    #[test]
    fn mismatched_columns_and_zero_batch_are_errors() {
        let d = data(4);
        let bad = column_f32(&[1.0, 2.0], &Device::Cpu).unwrap();
        assert!(matches!(
            d.clone().with_column("x", bad),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(d.batches(&BatchOptions::new(0), 0).is_err());
        let b = d
            .batches(&BatchOptions::new(2), 0)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(b.column("nope").is_err());
    }
}
