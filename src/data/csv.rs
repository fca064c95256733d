//! CSV files: the label in the first column, then the features; a header row is optional.
//!
//! The first non-empty line is a header iff one of its non-empty cells is not a number. Blank
//! lines are skipped, cells are trimmed, the separator is `,` and a quoted numeric cell such as
//! `"1.5"` is accepted by stripping the quotes. Row numbers in errors count lines in the file
//! from 1 (a header is row 1).

use std::fmt::Write as _;
use std::path::Path;

use super::{Dataset, MAX_LABEL, read_file, write_atomic};
use crate::error::{Error, Result};

/// What the scan found besides the rows it handed to the callback.
struct Scan {
    /// Number of data rows.
    rows: usize,
    /// Number of cells in every row.
    cols: usize,
}

/// Removes surrounding whitespace and one pair of surrounding double quotes.
fn clean(cell: &str) -> &str {
    let t = cell.trim();
    match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => t,
    }
}

/// Shortens a cell for an error message.
fn shown(cell: &str) -> String {
    let mut s: String = cell.chars().take(40).collect();
    if s.len() < cell.len() {
        s.push('…');
    }
    s
}

/// Decodes the file as UTF-8, splits it into lines and calls `on_row(row_number, cells)` for every
/// data row, after checking that every row has as many cells as the first one.
fn scan(
    path: &Path,
    bytes: &[u8],
    mut on_row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<Scan> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!("byte {}", e.valid_up_to()),
            "the file is not UTF-8 text; save the CSV as UTF-8 (or plain ASCII)",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cells: Vec<&str> = Vec::new();
    let mut first: Option<(usize, usize)> = None; // (row number, cell count) of the first non-empty line
    let mut rows = 0usize;
    let mut last_row = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        let row = i + 1;
        last_row = row;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        cells.clear();
        cells.extend(line.split(',').map(clean));
        let Some((first_row, cols)) = first else {
            first = Some((row, cells.len()));
            let is_header = cells
                .iter()
                .any(|c| !c.is_empty() && c.parse::<f64>().is_err());
            if !is_header {
                rows += 1;
                on_row(row, &cells)?;
            }
            continue;
        };
        if cells.len() != cols {
            let mut message = format!(
                "row {row} has {} cells, expected {cols} like row {first_row}; every row needs the same number of comma-separated cells",
                cells.len()
            );
            if cells.len() == 1 && (line.contains(';') || line.contains('\t')) {
                message.push_str(" (the separator must be ',', not ';' or a tab)");
            }
            return Err(Error::data(path, format!("row {row}"), message));
        }
        rows += 1;
        on_row(row, &cells)?;
    }
    match first {
        _ if rows > 0 => Ok(Scan {
            rows,
            cols: first.map_or(0, |f| f.1),
        }),
        None => Err(Error::data(
            path,
            "row 1",
            "the file is empty (no data rows); expected one sample per line of comma-separated numbers",
        )),
        Some(_) => Err(Error::data(
            path,
            format!("row {}", last_row.max(2)),
            "the file has a header but no data rows; expected one sample per line after the header",
        )),
    }
}

/// Parses one feature cell as a finite f32.
fn parse_feature(path: &Path, row: usize, col: usize, cell: &str) -> Result<f32> {
    let pos = || format!("row {row}, column {col}");
    if cell.is_empty() {
        return Err(Error::data(
            path,
            pos(),
            "the cell is empty; every feature must be a number (a trailing comma adds an empty column)",
        ));
    }
    let v: f64 = cell.parse().map_err(|_| {
        Error::data(
            path,
            pos(),
            format!(
                "cell \"{}\" is not a number; every feature must be numeric",
                shown(cell)
            ),
        )
    })?;
    if !v.is_finite() {
        return Err(Error::data(
            path,
            pos(),
            format!(
                "cell \"{}\" is {v}; every feature must be a finite number (fill in or drop missing values)",
                shown(cell)
            ),
        ));
    }
    let x = v as f32;
    if !x.is_finite() {
        return Err(Error::data(
            path,
            pos(),
            format!(
                "cell \"{}\" is too large for f32 (at most about 3.4e38); rescale the feature",
                shown(cell)
            ),
        ));
    }
    Ok(x)
}

/// Parses a label cell: a non-negative integer written as `3` or `3.0`.
fn parse_label(path: &Path, row: usize, cell: &str) -> Result<u32> {
    let pos = || format!("row {row}, column 1");
    let v: f64 = cell.parse().map_err(|_| {
        Error::data(
            path,
            pos(),
            format!(
                "label \"{}\" is not a number; the first column must hold the class index (0, 1, 2, ...)",
                shown(cell)
            ),
        )
    })?;
    let problem = if !v.is_finite() {
        "is not finite"
    } else if v < 0.0 {
        "is negative"
    } else if v.fract() != 0.0 {
        "is not an integer"
    } else if v > f64::from(MAX_LABEL) {
        return Err(Error::data(
            path,
            pos(),
            format!(
                "label \"{}\" is above {MAX_LABEL}, the largest class index wgmlp accepts (at most {} classes); \
                 the first column must hold the class index 0, 1, 2, ... (is it a label column?)",
                shown(cell),
                u64::from(MAX_LABEL) + 1
            ),
        ));
    } else {
        return Ok(v as u32);
    };
    Err(Error::data(
        path,
        pos(),
        format!(
            "label \"{}\" {problem}; labels must be class indices 0, 1, 2, ... in the first column",
            shown(cell)
        ),
    ))
}

/// Reads a labelled CSV: class index in the first column, then the features.
///
/// `n_classes` is `max label + 1` unless given, in which case a label `>= n_classes` is an
/// error naming the row. Labels above [`MAX_LABEL`] are always an error.
pub fn read_labeled(path: &Path, n_classes: Option<usize>) -> Result<Dataset> {
    labeled_from_bytes(path, &read_file(path)?, n_classes)
}

/// Reads a labelled CSV whose labels must be among `classes` classes, for a model that has
/// them; a label outside is an error naming the row and `why` there are that many classes
/// (e.g. `of the training labels in train.csv`).
pub fn read_labeled_within(path: &Path, classes: usize, why: &str) -> Result<Dataset> {
    labeled(path, &read_file(path)?, Some(classes), why)
}

/// Like [`read_labeled`], from the bytes of a file; `path` names it in errors.
pub fn labeled_from_bytes(path: &Path, bytes: &[u8], n_classes: Option<usize>) -> Result<Dataset> {
    labeled(path, bytes, n_classes, "")
}

fn labeled(path: &Path, bytes: &[u8], n_classes: Option<usize>, why: &str) -> Result<Dataset> {
    if n_classes == Some(0) {
        return Err(Error::config("n_classes", "must be at least 1"));
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let scan = scan(path, bytes, |row, cells| {
        if cells.len() < 2 {
            return Err(Error::data(
                path,
                format!("row {row}"),
                format!(
                    "the row has {} column; a labelled CSV needs the label in column 1 followed by at least one feature (is the separator ','?)",
                    cells.len()
                ),
            ));
        }
        let label = parse_label(path, row, cells[0])?;
        if let Some(c) = n_classes.filter(|&c| label as usize >= c) {
            return Err(Error::data(
                path,
                format!("row {row}, column 1"),
                match why {
                    "" => format!(
                        "label {label} is out of range; there are {c} classes, so labels must be 0..={}",
                        c - 1
                    ),
                    why => format!(
                        "label {label} is not one of the {c} classes (0..={}) {why}, so the model could never predict it; \
                         remove such rows or add the class to the training data",
                        c - 1
                    ),
                },
            ));
        }
        labels.push(label);
        for (j, cell) in cells[1..].iter().enumerate() {
            features.push(parse_feature(path, row, j + 2, cell)?);
        }
        Ok(())
    })?;
    debug_assert_eq!(scan.rows, labels.len());
    let n_classes =
        n_classes.unwrap_or_else(|| labels.iter().copied().max().map_or(1, |m| m as usize + 1));
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Dataset::new(name, features, labels, scan.cols - 1, n_classes)
}

/// Reads a feature-only CSV (no label column), for `predict`: returns (features, n_rows, n_cols).
pub fn read_features(
    path: &Path,
    expected_features: Option<usize>,
) -> Result<(Vec<f32>, usize, usize)> {
    features_from_bytes(path, &read_file(path)?, expected_features)
}

/// Like [`read_features`], from the bytes of a file; `path` names it in errors.
pub fn features_from_bytes(
    path: &Path,
    bytes: &[u8],
    expected_features: Option<usize>,
) -> Result<(Vec<f32>, usize, usize)> {
    let mut features = Vec::new();
    let scan = scan(path, bytes, |row, cells| {
        if let Some(k) = expected_features.filter(|&k| cells.len() != k) {
            let hint = if cells.len() == k + 1 {
                " (is the first column a label? remove it for prediction)"
            } else {
                ""
            };
            return Err(Error::data(
                path,
                format!("row {row}"),
                format!(
                    "has {} feature columns but the model expects {k}{hint}",
                    cells.len()
                ),
            ));
        }
        for (j, cell) in cells.iter().enumerate() {
            features.push(parse_feature(path, row, j + 1, cell)?);
        }
        Ok(())
    })?;
    Ok((features, scan.rows, scan.cols))
}

/// Writes a labelled CSV with a header `label,f0,f1,...` (atomically: temp file, then rename).
pub fn write_labeled(path: &Path, data: &Dataset) -> Result<()> {
    let mut out = String::from("label");
    for j in 0..data.n_features {
        let _ = write!(out, ",f{j}");
    }
    out.push('\n');
    for (i, label) in data.labels.iter().enumerate() {
        let _ = write!(out, "{label}");
        for x in data.row(i) {
            let _ = write!(out, ",{x}");
        }
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TestDir;

    fn write(dir: &TestDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn labeled_err(dir: &TestDir, name: &str, text: &str, n_classes: Option<usize>) -> String {
        read_labeled(&write(dir, name, text), n_classes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_csv_with_header_blank_lines_crlf_and_quotes() {
        let dir = TestDir::new("csv-header");
        let p = write(
            &dir,
            "iris.csv",
            "\u{feff}label, a ,b\r\n\r\n1, 0.5, \"2\"\r\n  \n0,-1e-3,3.0\r\n2,4,5\n",
        );
        let d = read_labeled(&p, None).unwrap();
        assert_eq!(d.name, "iris");
        assert_eq!(d.labels, vec![1, 0, 2]);
        assert_eq!(d.features, vec![0.5, 2.0, -1e-3, 3.0, 4.0, 5.0]);
        assert_eq!((d.n_features, d.n_classes), (2, 3));
    }

    #[test]
    fn reads_csv_without_header_and_float_labels() {
        let dir = TestDir::new("csv-noheader");
        let p = write(&dir, "d.csv", "1.0,2,3\n0,4,5");
        let d = read_labeled(&p, Some(4)).unwrap();
        assert_eq!(d.labels, vec![1, 0]);
        assert_eq!(d.features, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(d.n_classes, 4);
    }

    #[test]
    fn write_labeled_round_trips() {
        let dir = TestDir::new("csv-roundtrip");
        let d = Dataset::new("rt", vec![0.1, -2.5, 1e-8, 3.0e7], vec![1, 0], 2, 2).unwrap();
        let p = dir.join("rt.csv");
        write_labeled(&p, &d).unwrap();
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .starts_with("label,f0,f1\n")
        );
        assert_eq!(read_labeled(&p, Some(2)).unwrap(), d);
    }

    #[test]
    fn ragged_row_names_row_and_counts() {
        let dir = TestDir::new("csv-ragged");
        let e = labeled_err(&dir, "ragged.csv", "label,x,y\n0,1,2\n\n1,2\n", None);
        assert!(
            e.contains("ragged.csv")
                && e.contains("row 4")
                && e.contains("has 2 cells, expected 3"),
            "{e}"
        );
        let e = labeled_err(&dir, "semi.csv", "0,1,2\n1;2;3\n", None);
        assert!(e.contains("row 2") && e.contains("separator"), "{e}");
    }

    #[test]
    fn non_numeric_cell_names_row_column_and_text() {
        let dir = TestDir::new("csv-text");
        let e = labeled_err(&dir, "text.csv", "label,a,b\n0,1,2\n1,2,abc\n", None);
        assert!(
            e.contains("text.csv") && e.contains("row 3, column 3") && e.contains("\"abc\""),
            "{e}"
        );
        let e = labeled_err(&dir, "empty-cell.csv", "0,1,\n", None);
        assert!(e.contains("row 1, column 3") && e.contains("empty"), "{e}");
    }

    #[test]
    fn nan_and_inf_cells_are_rejected() {
        let dir = TestDir::new("csv-nonfinite");
        let e = labeled_err(&dir, "nan.csv", "0,1,2\n1,NaN,2\n", None);
        assert!(
            e.contains("nan.csv") && e.contains("row 2, column 2") && e.contains("finite"),
            "{e}"
        );
        let e = labeled_err(&dir, "inf.csv", "0,1,2\n1,2,-inf\n", None);
        assert!(
            e.contains("inf.csv") && e.contains("row 2, column 3") && e.contains("finite"),
            "{e}"
        );
        let e = labeled_err(&dir, "big.csv", "0,1,1e39\n", None);
        assert!(
            e.contains("row 1, column 3") && e.contains("too large"),
            "{e}"
        );
    }

    #[test]
    fn empty_file_and_header_only_are_rejected() {
        let dir = TestDir::new("csv-empty");
        let e = labeled_err(&dir, "empty.csv", "", None);
        assert!(
            e.contains("empty.csv") && e.contains("row 1") && e.contains("no data rows"),
            "{e}"
        );
        let e = labeled_err(&dir, "blank.csv", " \n\n", None);
        assert!(e.contains("no data rows"), "{e}");
        let e = labeled_err(&dir, "header.csv", "label,a\n", None);
        assert!(
            e.contains("header.csv") && e.contains("row 2") && e.contains("header but no data"),
            "{e}"
        );
    }

    #[test]
    fn label_out_of_range_is_rejected() {
        let dir = TestDir::new("csv-range");
        let e = labeled_err(&dir, "range.csv", "0,1\n1,1\n3,1\n", Some(3));
        assert!(
            e.contains("range.csv") && e.contains("row 3, column 1") && e.contains("out of range"),
            "{e}"
        );
        let p = write(&dir, "test.csv", "0,1\n5,1\n");
        let e = read_labeled_within(&p, 2, "of the training labels in train.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test.csv: row 2, column 1: label 5 is not one of the 2 classes (0..=1) of the training labels in train.csv"),
            "{e}"
        );
    }

    #[test]
    fn a_label_above_the_class_limit_names_the_row_not_the_hidden_layers() {
        let dir = TestDir::new("csv-huge-label");
        let e = labeled_err(&dir, "huge.csv", "0,1,2\n4000000000,3,4\n", None);
        assert!(
            e.contains("huge.csv") && e.contains("row 2, column 1") && e.contains("above 65535"),
            "{e}"
        );
        assert!(!e.contains("--hidden"), "{e}");
        let d = read_labeled(&write(&dir, "max.csv", "65535,1\n"), None).unwrap();
        assert_eq!(d.n_classes, 65536);
    }

    #[test]
    fn negative_fractional_and_textual_labels_are_rejected() {
        let dir = TestDir::new("csv-labels");
        let e = labeled_err(&dir, "neg.csv", "0,1\n-1,1\n", None);
        assert!(
            e.contains("neg.csv") && e.contains("row 2, column 1") && e.contains("negative"),
            "{e}"
        );
        let e = labeled_err(&dir, "frac.csv", "0,1\n1.5,1\n", None);
        assert!(
            e.contains("row 2, column 1") && e.contains("not an integer"),
            "{e}"
        );
        let e = labeled_err(&dir, "word.csv", "0,1\ncat,1\n", None);
        assert!(
            e.contains("row 2, column 1") && e.contains("\"cat\""),
            "{e}"
        );
    }

    #[test]
    fn single_column_labeled_csv_is_rejected() {
        let dir = TestDir::new("csv-onecol");
        let e = labeled_err(&dir, "one.csv", "label\n0\n1\n", None);
        assert!(
            e.contains("one.csv") && e.contains("row 2") && e.contains("at least one feature"),
            "{e}"
        );
    }

    #[test]
    fn read_features_reads_and_checks_column_count() {
        let dir = TestDir::new("csv-features");
        let p = write(&dir, "x.csv", "a,b\n1,2\n3,4\n5,6\n");
        assert_eq!(
            read_features(&p, Some(2)).unwrap(),
            (vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2)
        );
        let e = read_features(&p, Some(3)).unwrap_err().to_string();
        assert!(e.contains("x.csv") && e.contains("row 2"), "{e}");
        assert!(
            e.contains("has 2 feature columns but the model expects 3"),
            "{e}"
        );
        let e = read_features(&p, Some(1)).unwrap_err().to_string();
        assert!(e.contains("is the first column a label"), "{e}");
    }

    #[test]
    fn non_utf8_file_is_rejected_with_byte_offset() {
        let dir = TestDir::new("csv-utf8");
        let p = dir.join("latin1.csv");
        std::fs::write(&p, b"0,1\n1,\xe9\n").unwrap();
        let e = read_features(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("latin1.csv") && e.contains("byte 6") && e.contains("UTF-8"),
            "{e}"
        );
    }
}
