//! Plain text tables for the commands' human output: left-aligned columns
//! separated by two spaces, no trailing blanks, no control codes.

/// Rows of cells as aligned lines, each prefixed by `indent`.
pub fn aligned<R: AsRef<[String]>>(rows: &[R], indent: &str) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.as_ref().get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        out.push_str(indent);
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_aligned_and_lines_not_padded() {
        let rows = vec![
            vec!["NAME".to_string(), "ADDRESS".to_string()],
            vec!["app1".to_string(), "127.0.10.1".to_string()],
            vec!["database".to_string(), String::new()],
        ];
        assert_eq!(
            super::aligned(&rows, "  "),
            "  NAME      ADDRESS\n  app1      127.0.10.1\n  database\n"
        );
    }
}
