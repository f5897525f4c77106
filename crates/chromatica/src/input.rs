//! Checks on caller-supplied vectors, shared by train, add and search.

use crate::error::{Error, Result};

/// Number of rows of `data` as `dim`-dimensional vectors, after checking
/// that it is non-empty, whole rows, and finite. `what` names the input.
pub fn check_vectors(data: &[f32], dim: usize, what: &str) -> Result<usize> {
    if data.is_empty() {
        return Err(Error::InvalidInput(format!("no {what} given")));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(Error::InvalidInput(format!(
            "{what}: {} floats is not a whole number of vectors of dimension {dim}",
            data.len()
        )));
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(format!(
            "{what}: row {} has a non-finite value ({}) at column {}",
            i / dim,
            data[i],
            i % dim
        )));
    }
    Ok(data.len() / dim)
}

/// `check_vectors` for a matrix whose dimension the caller states, e.g. from
/// a file header: a different dimension is named as such.
pub fn check_dim(file_dim: usize, index_dim: usize, what: &str) -> Result<()> {
    if file_dim != index_dim {
        return Err(Error::InvalidInput(format!(
            "{what} have dimension {file_dim}, the index has dimension {index_dim}"
        )));
    }
    Ok(())
}

/// Ids must not repeat within one batch: an id names exactly one vector.
pub fn check_unique_ids(ids: &[u64]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for (row, &id) in ids.iter().enumerate() {
        if id == u64::MAX {
            return Err(Error::InvalidInput(format!("id at row {row} is {id}, the largest id is {}", u64::MAX - 1)));
        }
        if !seen.insert(id) {
            return Err(Error::InvalidInput(format!("id {id} appears twice in the batch (again at row {row})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_row_and_column() {
        let mut v = vec![0.0; 12];
        v[7] = f32::NAN;
        let e = check_vectors(&v, 4, "vectors").unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("column 3") && e.contains("NaN"), "{e}");
        v[7] = f32::INFINITY;
        assert!(check_vectors(&v, 4, "vectors").unwrap_err().to_string().contains("inf"));
        assert!(check_vectors(&v[..5], 4, "q").unwrap_err().to_string().contains("whole number"));
        assert!(check_vectors(&[], 4, "queries").unwrap_err().to_string().contains("no queries"));
        assert_eq!(check_vectors(&[1.0; 8], 4, "v").unwrap(), 2);
    }
}
