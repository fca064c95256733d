//! CSV files: the label in the first column, then the features; a header row is optional.
//!
//! The first non-empty line is a header iff one of its non-empty cells is not a number. Blank
//! lines are skipped, cells are trimmed and the separator is `,`. Quoting is RFC 4180's (read
//! by the `csv` crate): a quoted cell may hold commas (`"a,b"`), doubled quotes and line
//! breaks, and a quoted numeric cell such as `"1.5"` is a number. Row numbers in errors count
//! lines in the file from 1 (a header is row 1; a record that spans lines has the number of
//! its first).

use std::fmt::Write as _;
use std::ops::ControlFlow;
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

/// Removes surrounding whitespace and one pair of surrounding double quotes (left by a
/// quoted cell with spaces before its opening quote, which CSV reads as text).
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

/// The file as UTF-8 text, without a byte-order mark.
fn text_of<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!("byte {}", e.valid_up_to()),
            "the file is not UTF-8 text; save the CSV as UTF-8 (or plain ASCII)",
        )
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Calls `f(row, line, cells)` for every record of `text` that is not a blank line: `row` is
/// the 1-based line it starts on, `line` its text and `cells` its cells, [`clean`]ed. Stops
/// at the first error or `Break`.
fn for_each_record(
    path: &Path,
    text: &str,
    mut f: impl FnMut(usize, &str, &[&str]) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    // The reader starts a record where the previous one ended, with the line breaks and
    // blank lines before it, and counts lines accordingly: lines are counted here instead,
    // up to byte `counted`.
    let (mut counted, mut line_no) = (0usize, 1usize);
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                let at = e.position().map_or(text.len(), |p| p.byte() as usize);
                let row = line_no + newlines(text.get(counted..at).unwrap_or_default());
                let message = format!("{e}; save the file as comma-separated UTF-8 text");
                return Err(Error::data(path, format!("row {row}"), message));
            }
        }
        // The record's text, from its first byte (the reader's start is where the previous
        // record ended: line breaks and blank lines come first) to the end of its line.
        let (from, end) = (
            record.position().map_or(counted, |p| p.byte() as usize),
            reader.position().byte() as usize,
        );
        let raw = text.get(from..end).unwrap_or_default();
        let skipped = raw.len() - raw.trim_start_matches(['\r', '\n']).len();
        let (start, line) = (from + skipped, &raw[skipped..]);
        line_no += newlines(text.get(counted..start).unwrap_or_default());
        counted = start;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = record.iter().map(clean).collect();
        if f(line_no, line, &cells)?.is_break() {
            return Ok(());
        }
    }
}

/// The number of line breaks in `text`.
fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// The cells of the first record (the header, if the file has one), when the file is text.
fn first_record(bytes: &[u8]) -> Option<Vec<String>> {
    let text = text_of(Path::new(""), bytes).ok()?;
    let mut first = None;
    for_each_record(Path::new(""), text, |_, _, cells| {
        first = Some(cells.iter().map(|c| c.to_string()).collect());
        Ok(ControlFlow::Break(()))
    })
    .ok()?;
    first
}

/// Decodes the file as UTF-8, reads its records and calls `on_row(row_number, cells)` for
/// every data row, after checking that every row has as many cells as the first one.
fn scan(
    path: &Path,
    bytes: &[u8],
    on_row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<Scan> {
    scan_with(path, bytes, None, on_row)
}

/// [`scan`], where the first line is a header iff a cell other than `text_col` (a column
/// of string labels, which are not numbers in any row) is not a number.
fn scan_with(
    path: &Path,
    bytes: &[u8],
    text_col: Option<usize>,
    mut on_row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<Scan> {
    let text = text_of(path, bytes)?;
    let mut first: Option<(usize, usize)> = None; // (row number, cell count) of the first non-empty line
    let mut rows = 0usize;
    for_each_record(path, text, |row, line, cells| {
        let Some((first_row, cols)) = first else {
            first = Some((row, cells.len()));
            let is_header = cells
                .iter()
                .enumerate()
                .any(|(j, c)| Some(j) != text_col && !c.is_empty() && c.parse::<f64>().is_err());
            if !is_header {
                rows += 1;
                on_row(row, cells)?;
            }
            return Ok(ControlFlow::Continue(()));
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
        on_row(row, cells)?;
        Ok(ControlFlow::Continue(()))
    })?;
    // The number of the last line ('\n' ends a line; text after the last one is a line too).
    let last_row = newlines(text) + 1;
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

/// Which columns of a regression CSV hold the targets; every other column is a feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumns {
    /// The first `n` columns (`--targets N`).
    First(usize),
    /// Columns named in the header, or given by 1-based index (`--target-columns y,3`).
    Named(Vec<String>),
}

/// The header cells of a CSV (its first non-empty line, when a cell is not a number).
fn header_cells(bytes: &[u8]) -> Option<Vec<String>> {
    let cells = first_record(bytes)?;
    cells
        .iter()
        .any(|c| !c.is_empty() && c.parse::<f64>().is_err())
        .then_some(cells)
}

/// Resolves the target columns of a regression CSV with `cols` columns to 0-based indices.
fn target_indices(
    path: &Path,
    bytes: &[u8],
    spec: &TargetColumns,
    cols: usize,
) -> Result<Vec<usize>> {
    let spec_text = |spec: &TargetColumns| match spec {
        TargetColumns::First(n) => format!("--targets {n}"),
        TargetColumns::Named(names) => format!("--target-columns {}", names.join(",")),
    };
    let indices: Vec<usize> = match spec {
        TargetColumns::First(n) => (0..*n).collect(),
        TargetColumns::Named(names) => {
            let header = header_cells(bytes);
            names
                .iter()
                .map(|name| {
                    if let Some(i) = header
                        .as_ref()
                        .and_then(|h| h.iter().position(|c| c == name))
                    {
                        return Ok(i);
                    }
                    match name.parse::<usize>() {
                        Ok(i) if (1..=cols).contains(&i) => Ok(i - 1),
                        _ => Err(Error::data(
                            path,
                            "header",
                            format!(
                                "there is no column {name:?} (the file has {cols} columns{}); name a header cell or give a 1-based column index",
                                header.as_ref().map_or_else(String::new, |h| format!(": {}", h.join(",")))
                            ),
                        )),
                    }
                })
                .collect::<Result<_>>()?
        }
    };
    if indices.is_empty() {
        return Err(Error::config(
            "--targets",
            "a regression CSV needs at least one target column",
        ));
    }
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != indices.len() {
        return Err(Error::config(
            "--target-columns",
            format!("{} names a column twice", spec_text(spec)),
        ));
    }
    if indices.len() >= cols {
        return Err(Error::data(
            path,
            "row 1",
            format!(
                "{} leaves no feature column (the file has {cols} columns); name fewer target columns",
                spec_text(spec)
            ),
        ));
    }
    Ok(indices)
}

/// Reads a regression CSV: float targets in the columns `spec` names, features in the rest
/// (in file order); a header row is optional (needed for named columns).
pub fn read_regression(path: &Path, spec: &TargetColumns) -> Result<Dataset> {
    regression_from_bytes(path, &read_file(path)?, spec)
}

/// Like [`read_regression`], from the bytes of a file; `path` names it in errors.
pub fn regression_from_bytes(path: &Path, bytes: &[u8], spec: &TargetColumns) -> Result<Dataset> {
    let mut features = Vec::new();
    let mut targets = Vec::new();
    let mut indices: Option<Vec<usize>> = None;
    let scan = scan(path, bytes, |row, cells| {
        if indices.is_none() {
            indices = Some(target_indices(path, bytes, spec, cells.len())?);
        }
        let t = indices.as_deref().unwrap_or_default();
        for &j in t {
            targets.push(parse_feature(path, row, j + 1, cells[j])?);
        }
        for (j, cell) in cells.iter().enumerate() {
            if !t.contains(&j) {
                features.push(parse_feature(path, row, j + 1, cell)?);
            }
        }
        Ok(())
    })?;
    let n_targets = indices.map_or(0, |t| t.len());
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Dataset::regression(name, features, targets, scan.cols - n_targets, n_targets)
}

/// What the first column of a CSV looks like: `Regress` when a value is not an integer
/// (a negative integer stays a broken class label, reported as such); for integer labels, `Classify` with a hint when they have so many distinct values
/// that they look like a regression target.
pub fn detect_task(path: &Path) -> Result<(crate::config::Task, Option<String>)> {
    use crate::config::Task;
    let bytes = read_file(path)?;
    let mut float = false;
    let mut distinct = std::collections::BTreeSet::new();
    let scan = scan(path, &bytes, |_, cells| {
        if let Ok(v) = cells[0].parse::<f64>() {
            if v.is_finite() && v.fract() != 0.0 {
                float = true;
            } else if distinct.len() <= 1024 {
                distinct.insert(v.to_bits());
            }
        }
        Ok(())
    })?;
    if float {
        return Ok((Task::Regress, None));
    }
    let hint = (distinct.len() > 50 && distinct.len() * 5 > scan.rows).then(|| {
        format!(
            "{}: the label column has {}{} distinct integer values; if it is a quantity rather than a class, pass --task regress",
            path.display(),
            distinct.len().min(1024),
            if distinct.len() > 1024 { "+" } else { "" }
        )
    });
    Ok((Task::Classify, hint))
}

/// Writes a regression CSV with a header `y0,…,f0,…`: targets first (atomically).
pub fn write_regression(path: &Path, data: &Dataset) -> Result<()> {
    let mut out = String::new();
    let names: Vec<String> = (0..data.n_targets)
        .map(|j| format!("y{j}"))
        .chain((0..data.n_features).map(|j| format!("f{j}")))
        .collect();
    out.push_str(&names.join(","));
    out.push('\n');
    for i in 0..data.len() {
        let cells: Vec<String> = data
            .target_row(i)
            .iter()
            .chain(data.row(i))
            .map(|v| v.to_string())
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

/// How string class labels are numbered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClassOrder {
    /// In the order they first appear in the file.
    #[default]
    FirstSeen,
    /// Sorted by name (byte order).
    Sorted,
}

impl std::str::FromStr for ClassOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "first-seen" | "first_seen" | "first" => Ok(ClassOrder::FirstSeen),
            "sorted" => Ok(ClassOrder::Sorted),
            _ => Err(Error::config(
                "--class-order",
                format!("unknown order {s:?}; choose first-seen or sorted"),
            )),
        }
    }
}

/// Where a classification CSV's label is and how its labels become class indices.
#[derive(Clone, Debug, Default)]
pub struct LabelOptions {
    /// The label column: a header name, a 1-based index, or `last`; `None` is the first.
    pub column: Option<String>,
    /// How string labels are numbered when `classes` is not given.
    pub order: ClassOrder,
    /// The class names of the model (or of the training set): string labels must be among
    /// them and take their index. `None`: found in the file.
    pub classes: Option<Vec<String>>,
}

/// Resolves a label column (header name, 1-based index or `last`) to a 0-based index.
fn label_index(path: &Path, bytes: &[u8], column: &str, cols: usize) -> Result<usize> {
    let header = header_cells(bytes);
    if let Some(i) = header
        .as_ref()
        .and_then(|h| h.iter().position(|c| c == column))
    {
        return Ok(i);
    }
    if column.eq_ignore_ascii_case("last") {
        return Ok(cols - 1);
    }
    match column.parse::<usize>() {
        Ok(i) if (1..=cols).contains(&i) => Ok(i - 1),
        _ => Err(Error::data(
            path,
            "header",
            format!(
                "there is no column {column:?} for --label-column (the file has {cols} columns{}); name a header cell, give a 1-based index, or last",
                header
                    .as_ref()
                    .map_or_else(String::new, |h| format!(": {}", h.join(",")))
            ),
        )),
    }
}

/// Reads a classification CSV whose label sits in any column and may be a string (class
/// names such as `setosa`): integer labels keep their value as the class index unless
/// `opts.classes` names the classes; string labels are numbered in first-seen or sorted
/// order (or by `opts.classes`, where a name outside them is an error naming the row).
/// The features are the other columns, in file order.
pub fn read_classification(path: &Path, opts: &LabelOptions) -> Result<Dataset> {
    classification_from_bytes(path, &read_file(path)?, opts)
}

/// Like [`read_classification`], from the bytes of a file; `path` names it in errors.
pub fn classification_from_bytes(
    path: &Path,
    bytes: &[u8],
    opts: &LabelOptions,
) -> Result<Dataset> {
    // The label column, from the first line's cell count.
    let first_cols = first_record(bytes).map_or(0, |cells| cells.len());
    let col = match &opts.column {
        None => 0,
        Some(c) => label_index(path, bytes, c, first_cols.max(1))?,
    };
    if col == 0 && opts.classes.is_none() && opts.column.is_none() {
        // The classic layout: integer labels in column 1 (string labels read below).
        if let Ok(d) = labeled(path, bytes, None, "") {
            return Ok(d);
        }
    }
    let mut features = Vec::new();
    let mut cells_of_label: Vec<(usize, String)> = Vec::new();
    let scan = scan_with(path, bytes, Some(col), |row, cells| {
        if cells.len() < 2 {
            return Err(Error::data(
                path,
                format!("row {row}"),
                "the row has 1 column; a labelled CSV needs a label and at least one feature (is the separator ','?)",
            ));
        }
        cells_of_label.push((row, cells[col].to_string()));
        for (j, cell) in cells.iter().enumerate() {
            if j != col {
                features.push(parse_feature(path, row, j + 1, cell)?);
            }
        }
        Ok(())
    })?;
    // Labels that are all numbers are class indices (a negative or fractional one is an
    // error, not a class name); any other text makes every label a class name.
    let numeric =
        opts.classes.is_none() && cells_of_label.iter().all(|(_, c)| c.parse::<f64>().is_ok());
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let n_features = scan.cols - 1;
    if numeric {
        let labels = cells_of_label
            .iter()
            .map(|(row, c)| parse_label(path, *row, c).map_err(|e| relabel(e, col)))
            .collect::<Result<Vec<u32>>>()?;
        let n_classes = labels.iter().copied().max().map_or(1, |m| m as usize + 1);
        return Dataset::new(name, features, labels, n_features, n_classes);
    }
    let names: Vec<String> = match &opts.classes {
        Some(names) => names.clone(),
        None => {
            let mut names: Vec<String> = Vec::new();
            for (_, c) in &cells_of_label {
                if !names.contains(c) {
                    names.push(c.clone());
                }
            }
            if opts.order == ClassOrder::Sorted {
                names.sort();
            }
            names
        }
    };
    if names.len() > MAX_LABEL as usize + 1 {
        return Err(Error::data(
            path,
            format!("column {}", col + 1),
            format!(
                "{} distinct labels: more than the {} classes wgmlp accepts; is it the label column?",
                names.len(),
                MAX_LABEL as usize + 1
            ),
        ));
    }
    let index: std::collections::HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let labels = cells_of_label
        .iter()
        .map(|(row, c)| {
            index.get(c.as_str()).copied().ok_or_else(|| {
                Error::data(
                    path,
                    format!("row {row}, column {}", col + 1),
                    format!(
                        "label \"{}\" is not one of the model's {} classes ({}); remove such rows or train with them",
                        shown(c),
                        names.len(),
                        shown(&names.join(","))
                    ),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    let mut d = Dataset::new(name, features, labels, n_features, names.len().max(1))?;
    d.class_names = names;
    Ok(d)
}

/// Moves the position of a label error from column 1 to the label's real column.
fn relabel(e: Error, col: usize) -> Error {
    match e {
        Error::Data {
            file,
            position,
            message,
        } => Error::Data {
            file,
            position: position.replace("column 1", &format!("column {}", col + 1)),
            message: message.replace(" in the first column", ""),
        },
        other => other,
    }
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
    fn regression_csv_reads_first_or_named_targets_and_round_trips() {
        let dir = TestDir::new("csv-regress");
        let p = write(&dir, "r.csv", "a,y,b,z\n1,-0.5,2,3.25\n4,0.125,5,6\n");
        let d = read_regression(&p, &TargetColumns::Named(vec!["y".into(), "4".into()])).unwrap();
        assert_eq!((d.n_features, d.n_targets, d.len()), (2, 2, 2));
        assert_eq!(d.targets, vec![-0.5, 3.25, 0.125, 6.0]);
        assert_eq!(d.features, vec![1.0, 2.0, 4.0, 5.0]);
        let d = read_regression(&p, &TargetColumns::First(1)).unwrap();
        assert_eq!((d.targets.clone(), d.n_features), (vec![1.0, 4.0], 3));
        let out = dir.join("out.csv");
        write_regression(&out, &d).unwrap();
        assert_eq!(
            read_regression(&out, &TargetColumns::First(1))
                .unwrap()
                .targets,
            d.targets
        );
        let e = read_regression(&p, &TargetColumns::Named(vec!["w".into()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("r.csv") && e.contains("no column \"w\"") && e.contains("a,y,b,z"),
            "{e}"
        );
        let e = read_regression(&p, &TargetColumns::First(4))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no feature column"), "{e}");
        let e = read_regression(&p, &TargetColumns::Named(vec!["y".into(), "2".into()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn string_labels_in_any_column_are_numbered_first_seen_or_sorted() {
        let dir = TestDir::new("csv-strings");
        // No header: the string label column does not make the first row a header.
        let p = write(
            &dir,
            "iris.csv",
            "5.1,3.5,setosa\n6.2,2.9,virginica\n5.0,3.4,setosa\n",
        );
        let opts = LabelOptions {
            column: Some("last".into()),
            ..Default::default()
        };
        let d = read_classification(&p, &opts).unwrap();
        assert_eq!(d.class_names, vec!["setosa", "virginica"]);
        assert_eq!(d.labels, vec![0, 1, 0]);
        assert_eq!(d.features, vec![5.1, 3.5, 6.2, 2.9, 5.0, 3.4]);
        let sorted = LabelOptions {
            column: Some("3".into()),
            order: ClassOrder::Sorted,
            classes: None,
        };
        let p2 = write(&dir, "h.csv", "a,kind,b\n1,zebra,2\n3,ant,4\n");
        let named = LabelOptions {
            column: Some("kind".into()),
            ..sorted.clone()
        };
        let d = read_classification(&p2, &named).unwrap();
        assert_eq!(
            (d.class_names.clone(), d.labels.clone()),
            (vec!["ant".into(), "zebra".into()], vec![1, 0])
        );
        assert_eq!(d.features, vec![1.0, 2.0, 3.0, 4.0]);
        // Fixed names (a model's): an unknown one names the row, the label and the classes.
        let fixed = LabelOptions {
            classes: Some(vec!["setosa".into()]),
            ..opts.clone()
        };
        let e = read_classification(&p, &fixed).unwrap_err().to_string();
        assert!(
            e.contains("iris.csv") && e.contains("row 2, column 3") && e.contains("\"virginica\""),
            "{e}"
        );
        // Integer labels in another column stay class indices; a negative one is an error.
        let p3 = write(&dir, "n.csv", "1.5,2\n2.5,0\n");
        let d = read_classification(
            &p3,
            &LabelOptions {
                column: Some("2".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (d.labels.clone(), d.n_classes, d.class_names.len()),
            (vec![2, 0], 3, 0)
        );
        let p4 = write(&dir, "neg.csv", "1.5,-2\n2.5,0\n");
        let e = read_classification(
            &p4,
            &LabelOptions {
                column: Some("2".into()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("row 1, column 2") && e.contains("negative"),
            "{e}"
        );
        let e = read_classification(
            &p2,
            &LabelOptions {
                column: Some("species".into()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no column \"species\"") && e.contains("a,kind,b"),
            "{e}"
        );
        // The default (first column, integers) reads as before.
        let p5 = write(&dir, "classic.csv", "label,x\n1,0.5\n0,2\n");
        let d = read_classification(&p5, &LabelOptions::default()).unwrap();
        assert_eq!(d, read_labeled(&p5, None).unwrap());
    }

    #[test]
    fn detect_task_sees_float_targets_and_hints_at_many_integers() {
        use crate::config::Task;
        let dir = TestDir::new("csv-detect");
        let p = write(&dir, "f.csv", "y,x\n0,1\n-0.141120,2\n");
        assert_eq!(detect_task(&p).unwrap(), (Task::Regress, None));
        let p = write(&dir, "c.csv", "0,1\n2,2\n1,3\n");
        assert_eq!(detect_task(&p).unwrap(), (Task::Classify, None));
        let many: String = (0..200).map(|i| format!("{},{i}\n", i * 7)).collect();
        let p = write(&dir, "m.csv", &many);
        let (task, hint) = detect_task(&p).unwrap();
        assert_eq!(task, Task::Classify);
        assert!(hint.unwrap().contains("--task regress"));
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
    fn a_quoted_header_cell_may_hold_a_comma() {
        let dir = TestDir::new("csv-quoted-header");
        let p = write(&dir, "q.csv", "\"a,b\",c,label\n1,2,0\n3,4,1\n");
        assert_eq!(
            header_cells(&std::fs::read(&p).unwrap()),
            Some(vec!["a,b".to_string(), "c".into(), "label".into()])
        );
        let opts = LabelOptions {
            column: Some("label".into()),
            ..Default::default()
        };
        let d = read_classification(&p, &opts).unwrap();
        assert_eq!((d.labels.clone(), d.n_features), (vec![0, 1], 2));
        assert_eq!(d.features, vec![1.0, 2.0, 3.0, 4.0]);
        let d = read_regression(&p, &TargetColumns::Named(vec!["a,b".into()])).unwrap();
        assert_eq!(d.targets, vec![1.0, 3.0]);
        assert_eq!(d.features, vec![2.0, 0.0, 4.0, 1.0]);
        assert_eq!(read_features(&p, Some(3)).unwrap().1, 2);
    }

    #[test]
    fn quoted_numeric_cells_are_numbers_and_a_quoted_comma_is_one_cell() {
        let dir = TestDir::new("csv-quoted-cells");
        let p = write(&dir, "q.csv", "\"1\",\"1.5\", \"-2e1\" ,\"\"\n0,3,4\n");
        let e = read_labeled(&p, None).unwrap_err().to_string();
        // The quoted empty cell is an empty cell (column 4), not a header.
        assert!(e.contains("row 1, column 4") && e.contains("empty"), "{e}");
        let p = write(&dir, "q2.csv", "\"1\",\"1.5\", \"-2e1\" \n0,3,4\n");
        let d = read_labeled(&p, None).unwrap();
        assert_eq!(
            (d.labels.clone(), d.features.clone()),
            (vec![1, 0], vec![1.5, -20.0, 3.0, 4.0])
        );
        // "1,5" is one cell that is not a number (a decimal comma), not two cells.
        let p = write(&dir, "comma.csv", "0,1,2\n1,\"1,5\",2\n");
        let e = read_labeled(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("row 2, column 2") && e.contains("\"1,5\" is not a number"),
            "{e}"
        );
    }

    #[test]
    fn a_row_with_too_few_cells_names_its_row_and_the_first_rows_count() {
        let dir = TestDir::new("csv-short-row");
        let e = labeled_err(&dir, "short.csv", "\"a,b\",c,d\n0,1,2\n1,2\n", None);
        assert!(
            e.contains("short.csv")
                && e.contains("row 3")
                && e.contains("has 2 cells, expected 3 like row 1"),
            "{e}"
        );
        // A quoted cell over two lines is one record; the rows after it keep their line numbers.
        let e = labeled_err(&dir, "multi.csv", "\"a\nb\",c\n0,1\n1,x\n", None);
        assert!(e.contains("row 4, column 2") && e.contains("\"x\""), "{e}");
    }

    #[test]
    fn crlf_line_endings_and_a_byte_order_mark_read_like_plain_lines() {
        let dir = TestDir::new("csv-crlf");
        let p = write(&dir, "w.csv", "\u{feff}y,x\r\n0.5,1\r\n\r\n-1.5,2\r\n");
        let d = read_regression(&p, &TargetColumns::Named(vec!["y".into()])).unwrap();
        assert_eq!(
            (d.targets.clone(), d.features.clone()),
            (vec![0.5, -1.5], vec![1.0, 2.0])
        );
        let e = labeled_err(
            &dir,
            "crlf.csv",
            "\u{feff}label,x\r\n0,1\r\n\r\n1,?\r\n",
            None,
        );
        assert!(e.contains("row 4, column 2") && e.contains("\"?\""), "{e}");
        let e = labeled_err(&dir, "hdr.csv", "label,x\r\n", None);
        assert!(
            e.contains("row 2") && e.contains("header but no data"),
            "{e}"
        );
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
