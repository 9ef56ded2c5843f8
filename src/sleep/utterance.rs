//! What an operator's teaching utterance says: a name for what the robot is looking at ("this is
//! the white ball", "that is a pink capsule", "no, that one is the cyan cube") or a new word for
//! one it knows ("vermilion is a red", "sapphire means blue").
//!
//! This is the one place where words are read, and only at teaching time: the name becomes the
//! label of a moment in the day's memory, and sleep turns it into training sentences for the
//! instruction head. At run time instructions still reach the decision only as embeddings.

/// What a teaching utterance says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Teaching {
    /// "this is the white ball": the object in view is called `phrase` (`modifier` words, then
    /// the `noun`).
    Name {
        /// The modifier words ("white", "dark blue").
        modifier: String,
        /// The noun, last word of the phrase ("ball", "capsule").
        noun: String,
        /// Whether it was said as a correction ("no, that one is ...").
        correction: bool,
    },
    /// "vermilion is a red": `word` means the known word `means`.
    Synonym {
        /// The new word.
        word: String,
        /// The word (or phrase) it means.
        means: String,
    },
}

/// Why an utterance teaches nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UtteranceError {
    /// Not of a teaching form at all.
    #[error(
        "\"{0}\" names nothing: say \"this is the <colour> <shape>\" or \"<word> is a <colour>\""
    )]
    NamesNothing(String),
    /// A name without a colour (or without a shape).
    #[error("\"{0}\": name both its colour and its shape (\"this is the white ball\")")]
    Incomplete(String),
}

const ARTICLES: [&str; 4] = ["the", "a", "an", "one"];
/// Nouns that name no kind of thing: "this is the red thing" teaches nothing.
const VAGUE: [&str; 12] = [
    "thing",
    "one",
    "object",
    "stuff",
    "it",
    "this",
    "that",
    "something",
    "item",
    "here",
    "there",
    "nothing",
];

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_string())
        .collect()
}

/// Parse a teaching utterance.
pub fn parse(text: &str) -> Result<Teaching, UtteranceError> {
    let mut w = words(text);
    let nothing = || UtteranceError::NamesNothing(text.trim().to_string());
    let mut correction = false;
    if w.first().is_some_and(|x| x == "no" || x == "nope") {
        correction = true;
        w.remove(0);
    }
    // "that's" / "it's".
    if let Some(first) = w.first().cloned() {
        if let Some(stem) = first.strip_suffix("'s") {
            w[0] = stem.to_string();
            w.insert(1, "is".into());
        }
    }
    let is_at = w
        .iter()
        .position(|x| x == "is" || x == "means" || x == "are");
    let Some(is_at) = is_at else {
        return Err(nothing());
    };
    let subject: Vec<&str> = w[..is_at].iter().map(|s| s.as_str()).collect();
    let mut object: Vec<&str> = w[is_at + 1..].iter().map(|s| s.as_str()).collect();
    while object.first().is_some_and(|x| ARTICLES.contains(x)) {
        object.remove(0);
    }
    // "a kind of red", "a shade of red", "another word for red".
    for lead in [
        ["kind", "of"],
        ["shade", "of"],
        ["type", "of"],
        ["word", "for"],
    ] {
        if object.len() > 2 && object[..2] == lead {
            object.drain(..2);
        }
    }
    if object.is_empty() {
        return Err(nothing());
    }
    let deictic = |s: &[&str]| {
        matches!(
            s,
            ["this"] | ["that"] | ["it"] | ["here"] | ["this", "one"] | ["that", "one"]
        ) || s.is_empty()
    };
    if deictic(&subject) {
        let noun = object[object.len() - 1];
        if VAGUE.contains(&noun) {
            return Err(nothing());
        }
        if object.len() < 2 {
            return Err(UtteranceError::Incomplete(text.trim().to_string()));
        }
        return Ok(Teaching::Name {
            modifier: object[..object.len() - 1].join(" "),
            noun: noun.to_string(),
            correction,
        });
    }
    // "<word> is a <colour>": one new word for a known one.
    let mut subject = subject;
    while subject.first().is_some_and(|x| ARTICLES.contains(x)) {
        subject.remove(0);
    }
    if subject.len() == 1 && !VAGUE.contains(&subject[0]) && !correction {
        let means = object.join(" ");
        if means == subject[0] {
            return Err(nothing());
        }
        return Ok(Teaching::Synonym {
            word: subject[0].to_string(),
            means,
        });
    }
    Err(nothing())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_corrections_and_synonyms() {
        assert_eq!(
            parse("This is the white ball").unwrap(),
            Teaching::Name {
                modifier: "white".into(),
                noun: "ball".into(),
                correction: false
            }
        );
        assert_eq!(
            parse("no, that one is a pink capsule!").unwrap(),
            Teaching::Name {
                modifier: "pink".into(),
                noun: "capsule".into(),
                correction: true
            }
        );
        assert!(matches!(
            parse("that's a cyan cube"),
            Ok(Teaching::Name { .. })
        ));
        assert_eq!(
            parse("vermilion is a red").unwrap(),
            Teaching::Synonym {
                word: "vermilion".into(),
                means: "red".into()
            }
        );
        assert_eq!(
            parse("sapphire is a kind of blue").unwrap(),
            Teaching::Synonym {
                word: "sapphire".into(),
                means: "blue".into()
            }
        );
    }

    #[test]
    fn utterances_naming_nothing_are_refused() {
        for t in [
            "hello there",
            "go to the red ball",
            "this is",
            "this is the red thing",
            "",
        ] {
            assert!(parse(t).is_err(), "{t}");
        }
        assert!(matches!(
            parse("this is a ball"),
            Err(UtteranceError::Incomplete(_))
        ));
    }
}
