//! Command strings split into argv with shell-like quoting but no shell: no expansion,
//! no globbing, no pipes. `setup = ["npm ci"]` runs `npm` with the argument `ci`.

/// Splits a command string into words with shell-like quoting ('…', "…", \x) but no expansion.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => word.push(q),
                        None => return Err(format!("unterminated ' in command \"{text}\"")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => word.push(e),
                            None => return Err(format!("trailing \\ in command \"{text}\"")),
                        },
                        Some(q) => word.push(q),
                        None => return Err(format!("unterminated \" in command \"{text}\"")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(e) => {
                    in_word = true;
                    word.push(e);
                }
                None => return Err(format!("trailing \\ in command \"{text}\"")),
            },
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_without_a_shell() {
        assert_eq!(
            split_words(r#"npm run "build all" 'a b' c\ d"#).unwrap(),
            vec!["npm", "run", "build all", "a b", "c d"]
        );
        assert!(split_words("echo 'oops").is_err());
    }
}
