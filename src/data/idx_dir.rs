//! The MNIST / Fashion-MNIST directory layout: four IDX files found by name prefix, each
//! plain or gzip-compressed.

use std::path::{Path, PathBuf};

use super::Dataset;
use super::idx::{read_images, read_labels};
use crate::error::{Error, Result};

const TRAIN_IMAGES: &[&str] = &["train-images", "train-features"];
const TRAIN_LABELS: &[&str] = &["train-labels"];
const TEST_IMAGES: &[&str] = &["t10k-images", "test-images", "test-features"];
const TEST_LABELS: &[&str] = &["t10k-labels", "test-labels"];

/// The IDX files of a directory, as [`find_files`] found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `train-images*` (or `train-features*`), when the training files were looked for.
    pub train_images: Option<PathBuf>,
    /// `train-labels*`, when the training files were looked for.
    pub train_labels: Option<PathBuf>,
    /// `t10k-images*` (or `test-images*`, `test-features*`).
    pub test_images: PathBuf,
    /// `t10k-labels*` (or `test-labels*`).
    pub test_labels: PathBuf,
    /// One line for each file that exists both plain and gzip-compressed, saying which is read.
    pub notes: Vec<String>,
}

fn file_name(p: &Path) -> String {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
    name.unwrap_or_else(|| p.display().to_string())
}

/// The one file of `names` that starts with one of `prefixes`. A plain file and its `.gz`
/// copy count as one (the plain file is read, and a note says so); any other choice
/// between several files is an error, since wgmlp cannot tell which is meant.
fn find(
    dir: &Path,
    names: &[(String, PathBuf)],
    prefixes: &[&str],
    notes: &mut Vec<String>,
) -> Result<PathBuf> {
    let found: Vec<&(String, PathBuf)> = names
        .iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
    let wanted = || {
        let p: Vec<String> = prefixes.iter().map(|p| format!("{p}*")).collect();
        p.join(" or ")
    };
    match found.as_slice() {
        [] => Err(Error::data(
            dir,
            "directory",
            format!(
                "no {} file; expected the four MNIST/Fashion-MNIST IDX files train-images-idx3-ubyte, \
                 train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)",
                wanted()
            ),
        )),
        [(_, one)] => Ok(one.clone()),
        [(plain, p), (gz, _)] if gz.strip_suffix(".gz") == Some(plain.as_str()) => {
            notes.push(format!(
                "{}: both {plain} and {gz} exist; reading {plain}",
                dir.display()
            ));
            Ok(p.clone())
        }
        many => {
            let list: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
            Err(Error::data(
                dir,
                "directory",
                format!(
                    "{} files match {}: {}; keep only one of them (or one plain file and its .gz copy), \
                     since wgmlp cannot tell which is meant",
                    many.len(),
                    wanted(),
                    list.join(", ")
                ),
            ))
        }
    }
}

/// Finds the IDX files in `dir`: the two test files always, the two training files when
/// `with_train` (evaluation needs only the test files).
pub fn find_files(dir: &Path, with_train: bool) -> Result<IdxFiles> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read directory", e))? {
        let entry = entry.map_err(|e| Error::io(dir, "read directory", e))?;
        let path = entry.path();
        if path.is_file() {
            names.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    names.sort();
    let mut notes = Vec::new();
    let (train_images, train_labels) = if with_train {
        (
            Some(find(dir, &names, TRAIN_IMAGES, &mut notes)?),
            Some(find(dir, &names, TRAIN_LABELS, &mut notes)?),
        )
    } else {
        (None, None)
    };
    Ok(IdxFiles {
        dir: dir.to_path_buf(),
        train_images,
        train_labels,
        test_images: find(dir, &names, TEST_IMAGES, &mut notes)?,
        test_labels: find(dir, &names, TEST_LABELS, &mut notes)?,
        notes,
    })
}

/// Reads one images + labels pair and checks that the counts agree.
fn read_pair(images: &Path, labels: &Path) -> Result<(Vec<f32>, Vec<u32>, usize)> {
    let (x, n, k) = read_images(images)?;
    let y = read_labels(labels)?;
    if y.len() != n {
        return Err(Error::data(
            labels,
            "header",
            format!(
                "has {} labels but {} has {n} images; the two files must describe the same samples",
                y.len(),
                file_name(images)
            ),
        ));
    }
    Ok((x, y, k))
}

/// The first label of `labels` (read from `path`) that is not below `classes`, as an error
/// naming the sample; `why` says where the class count comes from.
fn check_labels(path: &Path, labels: &[u32], classes: usize, why: &str) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        None => Ok(()),
        Some(i) => Err(Error::data(
            path,
            format!("sample {i}"),
            format!(
                "label {} is not one of the {classes} classes {why}, so the model could never predict it; \
                 remove such samples or add the class to the training data",
                labels[i]
            ),
        )),
    }
}

fn dataset_name(dir: &Path) -> String {
    file_name(&dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
}

/// Reads the files `find_files(dir, true)` found into (train, test), named after the
/// directory. The classes are the training labels' (at least 2); a test label outside
/// them is an error naming the sample.
pub fn read_files(files: &IdxFiles) -> Result<(Dataset, Dataset)> {
    let (Some(train_images), Some(train_labels)) = (&files.train_images, &files.train_labels)
    else {
        return Err(Error::config(
            "IDX files",
            "the training files were not looked for; call find_files(dir, true)",
        ));
    };
    let (x_train, y_train, k_train) = read_pair(train_images, train_labels)?;
    let (x_test, y_test, k_test) = read_pair(&files.test_images, &files.test_labels)?;
    if k_train != k_test {
        return Err(Error::data(
            &files.test_images,
            "header",
            format!(
                "has {k_test} features per sample but {} has {k_train}; train and test must have the same shape",
                file_name(train_images)
            ),
        ));
    }
    let max = y_train.iter().copied().max().unwrap_or(0);
    let n_classes = (max as usize + 1).max(2);
    let why = format!(
        "(0..={}) of the training labels in {}",
        n_classes - 1,
        file_name(train_labels)
    );
    check_labels(&files.test_labels, &y_test, n_classes, &why)?;
    let name = dataset_name(&files.dir);
    let train = Dataset::new(name.clone(), x_train, y_train, k_train, n_classes)?;
    let test = Dataset::new(name, x_test, y_test, k_test, n_classes)?;
    Ok((train, test))
}

/// Reads the four MNIST-style IDX files in `dir` into (train, test), named after the
/// directory; see [`read_files`]. Use [`find_files`] to learn which files are read.
pub fn read_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    read_files(&find_files(dir, true)?)
}

/// Reads only the test files of `dir` for a model with `classes` outputs (the training
/// files need not exist); a label the model cannot output is an error naming the sample.
pub fn read_test_dir(dir: &Path, classes: usize) -> Result<(Dataset, IdxFiles)> {
    let files = find_files(dir, false)?;
    let (x, y, k) = read_pair(&files.test_images, &files.test_labels)?;
    let why = format!("(0..={}) of the model's outputs", classes.max(1) - 1);
    check_labels(&files.test_labels, &y, classes, &why)?;
    let test = Dataset::new(dataset_name(dir), x, y, k, classes.max(1))?;
    Ok((test, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::{write_images_u8, write_labels};
    use crate::data::testutil::{TestDir, assert_err};

    fn mnist_dir(dir: &TestDir, gz: bool, n_train_labels: u8) {
        let s = if gz { ".gz" } else { "" };
        let p = |name: &str| dir.join(&format!("{name}{s}"));
        write_images_u8(&p("train-images-idx3-ubyte"), &[3, 2, 2], &[9; 12], gz).unwrap();
        let y: Vec<u8> = (0..n_train_labels).collect();
        write_labels(&p("train-labels-idx1-ubyte"), &y, gz).unwrap();
        write_images_u8(&p("t10k-images-idx3-ubyte"), &[2, 2, 2], &[255; 8], gz).unwrap();
        write_labels(&p("t10k-labels-idx1-ubyte"), &[2, 0], gz).unwrap();
    }

    #[test]
    fn read_dir_finds_the_four_files() {
        for gz in [false, true] {
            let dir = TestDir::new(if gz { "mnist-gz" } else { "mnist" });
            mnist_dir(&dir, gz, 3);
            let (train, test) = read_dir(dir.path()).unwrap();
            assert_eq!((train.len(), test.len()), (3, 2));
            assert_eq!(
                (train.n_features, train.n_classes, test.n_classes),
                (4, 3, 3)
            );
            assert_eq!(test.features, vec![1.0; 8]);
            assert_eq!(train.labels, vec![0, 1, 2]);
            assert_eq!(train.name, file_name(dir.path()));
        }
    }

    #[test]
    fn read_dir_reports_image_label_count_mismatch() {
        let dir = TestDir::new("mnist-count");
        mnist_dir(&dir, false, 2);
        let parts = [
            "train-labels-idx1-ubyte",
            "train-images-idx3-ubyte",
            "header",
        ];
        let e = assert_err(read_dir(dir.path()), &parts);
        assert!(
            e.contains("has 2 labels but") && e.contains("has 3 images"),
            "{e}"
        );
    }

    #[test]
    fn read_dir_reports_missing_file() {
        let dir = TestDir::new("mnist-missing");
        mnist_dir(&dir, true, 3);
        std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let parts = [
            "mnist-missing",
            "directory",
            "no t10k-labels* or test-labels* file",
        ];
        assert_err(read_dir(dir.path()), &parts);
    }

    #[test]
    fn read_dir_reports_feature_count_mismatch() {
        let dir = TestDir::new("mnist-shape");
        mnist_dir(&dir, false, 3);
        write_images_u8(&dir.join("t10k-images-idx3-ubyte"), &[2, 3], &[1; 6], false).unwrap();
        let parts = [
            "t10k-images-idx3-ubyte",
            "header",
            "has 3 features",
            "has 4",
        ];
        assert_err(read_dir(dir.path()), &parts);
    }

    #[test]
    fn a_test_label_the_training_set_lacks_names_the_sample() {
        let dir = TestDir::new("mnist-test-label");
        mnist_dir(&dir, false, 3);
        write_labels(&dir.join("t10k-labels-idx1-ubyte"), &[0, 5], false).unwrap();
        let parts = [
            "t10k-labels-idx1-ubyte: sample 1",
            "label 5 is not one of the 3 classes (0..=2) of the training labels in train-labels-idx1-ubyte",
        ];
        assert_err(read_dir(dir.path()), &parts);
    }

    #[test]
    fn plain_and_gz_copies_read_the_plain_one_and_say_so_other_doubles_are_refused() {
        let dir = TestDir::new("mnist-both");
        mnist_dir(&dir, false, 3);
        mnist_dir(&dir, true, 3);
        let files = find_files(dir.path(), true).unwrap();
        assert_eq!(
            files.train_images,
            Some(dir.join("train-images-idx3-ubyte"))
        );
        assert_eq!(files.notes.len(), 4, "{:?}", files.notes);
        assert!(
            files.notes[0].contains("both train-images-idx3-ubyte and train-images-idx3-ubyte.gz exist; reading train-images-idx3-ubyte"),
            "{:?}",
            files.notes
        );
        assert_eq!(read_dir(dir.path()).unwrap().0.len(), 3);
        std::fs::copy(
            dir.join("t10k-labels-idx1-ubyte"),
            dir.join("test-labels-old"),
        )
        .unwrap();
        let parts = [
            "mnist-both",
            "directory",
            "3 files match t10k-labels* or test-labels*",
            "t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz, test-labels-old",
        ];
        assert_err(find_files(dir.path(), true), &parts);
    }

    #[test]
    fn the_test_files_alone_are_enough_for_evaluation() {
        let dir = TestDir::new("mnist-test-only");
        mnist_dir(&dir, true, 3);
        std::fs::remove_file(dir.join("train-images-idx3-ubyte.gz")).unwrap();
        std::fs::remove_file(dir.join("train-labels-idx1-ubyte.gz")).unwrap();
        assert!(read_dir(dir.path()).is_err());
        let (test, files) = read_test_dir(dir.path(), 10).unwrap();
        assert_eq!((test.len(), test.n_features, test.n_classes), (2, 4, 10));
        assert_eq!(files.train_images, None);
        let parts = [
            "t10k-labels-idx1-ubyte.gz: sample 0",
            "label 2 is not one of the 2 classes (0..=1) of the model's outputs",
        ];
        assert_err(read_test_dir(dir.path(), 2), &parts);
    }
}
