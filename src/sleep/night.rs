//! A night of learning: what the day's labelled moments taught, fitted into the connector and
//! the instruction head, regularised towards the current model so that nothing it knew is lost.
//!
//! * **Vision side.** Each labelled view gives cells that are the named thing (its target is the
//!   concept's prototype) and cells that surely are not (their target is what the current
//!   connector already makes of them: self-distillation). The weight update `D` minimises
//!   `|X_pos (W + D) + b - P|^2 + |X_neg D|^2 + lambda n |D|^2` in closed form (ridge on the
//!   residual), so the map only moves where the day's views need it to. The penalty is chosen on
//!   a held-out showing of each concept (when there are two or more).
//! * **Language side.** A new concept or a new word gets new rows in the instruction head (old
//!   rows are never touched): a ridge regression on training sentences generated with the taught
//!   words, whose targets sit a margin above what the old head gives its best concept on them,
//!   and a margin below on sentences naming other concepts.
//! * **Acceptance.** The night is accepted only if held-out views and sentences of the new
//!   concepts come out right and the old model's answers on the day's other cells and on
//!   sentences naming the old concepts are kept; otherwise (or past its time budget) it fails and
//!   the caller keeps the old state.

use crate::grounding::connector::{argmax, normalize, AlignConnector, Concept};
use crate::grounding::instruction::{self, InstructionHead};
use crate::sleep::state::{BrainState, LearnedWord};
use crate::sleep::utterance::{self, Teaching};
use crate::util::linalg::{add_at_b, solve_spd};
use crate::util::SplitMix;
use serde::Serialize;
use std::time::Instant;

/// Something that embeds text (the language region's model; a toy in tests).
pub trait Embedder {
    /// The sentence embedding of `text`.
    fn embed_text(&mut self, text: &str) -> Result<Vec<f32>, String>;
}

impl Embedder for crate::regions::language::LanguageModel {
    fn embed_text(&mut self, text: &str) -> Result<Vec<f32>, String> {
        self.embed(text)
            .map(|e| e.to_vec())
            .map_err(|e| e.to_string())
    }
}

/// One camera view of a labelled moment: the vision region's spatial map and which cells are
/// the named thing and which surely are not.
#[derive(Debug, Clone)]
pub struct View {
    /// `cells x in_dim` spatial features.
    pub spatial: Vec<f32>,
    /// Cells covered by the thing in front (where the robot was looking when told).
    pub positive: Vec<usize>,
    /// Cells well away from it.
    pub negative: Vec<usize>,
}

/// A labelled moment of the day: what was said, where the robot was, and what it saw.
#[derive(Debug, Clone)]
pub struct Moment {
    /// The utterance ("this is the white ball").
    pub utterance: String,
    /// Where it happened (scene name and seed, or a session id): moments of one scene share
    /// their coordinates.
    pub scene: String,
    /// Robot pose when told `(x, y, yaw)`.
    pub pose: [f64; 3],
    /// Where the named thing is (the pose plus the range ahead).
    pub target: [f64; 2],
    /// Its views (several, as it drove up).
    pub views: Vec<View>,
}

/// What the night may do.
#[derive(Debug, Clone)]
pub struct NightConfig {
    /// Wall-clock budget, s: past it the night is abandoned (the old state stays).
    pub max_seconds: f64,
    /// Ridge penalties tried (relative to the row count).
    pub lambdas: Vec<f64>,
    /// Training sentences generated per new head row.
    pub sentences_per_row: usize,
    /// Sentences per old concept kept as negatives (and to check that nothing is forgotten).
    pub old_sentences_per_concept: usize,
    /// Held-out views of a new concept must be classified right at least this often.
    pub min_view_accuracy: f64,
    /// The day's other cells must keep the old model's answer at least this often.
    pub min_agreement: f64,
    /// Held-out sentences naming what was taught must map to it at least this often.
    pub min_sentence_accuracy: f64,
    /// Seed of the sentence generator.
    pub seed: u64,
}

impl Default for NightConfig {
    fn default() -> Self {
        Self {
            max_seconds: 120.0,
            lambdas: vec![0.03, 0.1, 0.3, 1.0],
            sentences_per_row: 80,
            old_sentences_per_concept: 12,
            min_view_accuracy: 0.6,
            min_agreement: 0.95,
            min_sentence_accuracy: 0.9,
            seed: 19,
        }
    }
}

/// Why a night failed or a teaching was refused (each names the moment or the reason).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NightError {
    /// A moment that teaches nothing usable.
    #[error("teaching {index} (\"{utterance}\"): {message}")]
    Moment {
        /// Moment index (1-based).
        index: usize,
        /// What was said.
        utterance: String,
        /// Why it is refused.
        message: String,
    },
    /// Two teachings that cannot both be right.
    #[error("contradictory teachings {a} and {b}: {message}")]
    Contradiction {
        /// First moment (1-based).
        a: usize,
        /// Second moment (1-based).
        b: usize,
        /// How they disagree.
        message: String,
    },
    /// Nothing to learn.
    #[error("the day taught nothing (no labelled moments)")]
    Empty,
    /// The night ran past its budget: nothing was changed.
    #[error("the night ran past its budget of {0:.0} s at {1}; the old state is kept")]
    Overtime(f64, &'static str),
    /// The fitted model did not pass its checks: nothing was changed.
    #[error("the night's model was rejected ({0}); the old state is kept")]
    Rejected(String),
    /// The language model failed.
    #[error("language model: {0}")]
    Language(String),
    /// The solver failed.
    #[error("fit: {0}")]
    Fit(String),
}

/// A colour or shape term: its name and every word for it.
#[derive(Debug, Clone)]
struct Term {
    name: String,
    words: Vec<String>,
    learned: bool,
}

/// The words the robot knows: the shipped training vocabulary plus what it was taught.
#[derive(Debug, Clone)]
struct Vocabulary {
    colours: Vec<Term>,
    shapes: Vec<Term>,
}

impl Vocabulary {
    fn new(learned: &[LearnedWord]) -> Self {
        let colours = crate::world::Colour::ALL
            .iter()
            .map(|c| Term {
                name: c.name().into(),
                words: instruction::colour_words(c.name())
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                learned: false,
            })
            .collect();
        let shapes = crate::world::Shape::ALL
            .iter()
            .map(|s| Term {
                name: s.name().into(),
                words: instruction::shape_words(s.name())
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                learned: false,
            })
            .collect();
        let mut v = Self { colours, shapes };
        for w in learned {
            v.add(&w.kind, &w.term, &w.word);
        }
        v
    }

    fn terms_mut(&mut self, kind: &str) -> &mut Vec<Term> {
        if kind == "shape" {
            &mut self.shapes
        } else {
            &mut self.colours
        }
    }

    fn add(&mut self, kind: &str, term: &str, word: &str) {
        let terms = self.terms_mut(kind);
        match terms.iter_mut().find(|t| t.name == term) {
            Some(t) => {
                if !t.words.iter().any(|w| w == word) {
                    t.words.push(word.to_string());
                }
            }
            None => terms.push(Term {
                name: term.to_string(),
                words: vec![word.to_string()],
                learned: true,
            }),
        }
    }

    /// (kind, term) a word or phrase belongs to.
    fn lookup(&self, word: &str) -> Option<(&'static str, String)> {
        let singular = word.strip_suffix('s').unwrap_or(word);
        for (kind, terms) in [("colour", &self.colours), ("shape", &self.shapes)] {
            for t in terms {
                if t.words.iter().any(|w| w == word || w == singular) {
                    return Some((kind, t.name.clone()));
                }
            }
        }
        None
    }

    fn words_of(&self, kind: &str, term: &str) -> Vec<String> {
        let terms = if kind == "shape" {
            &self.shapes
        } else {
            &self.colours
        };
        terms
            .iter()
            .find(|t| t.name == term)
            .map(|t| t.words.clone())
            .unwrap_or_default()
    }
}

/// What one moment teaches, resolved against the vocabulary.
#[derive(Debug, Clone)]
enum Lesson {
    /// The moment's views show `concept` ("colour shape").
    Sees { colour: String, shape: String },
    /// A new word for a known term.
    Word(LearnedWord),
}

/// The training report of a night.
#[derive(Debug, Clone, Serialize)]
pub struct NightReport {
    /// Labelled moments.
    pub moments: usize,
    /// Views in them.
    pub views: usize,
    /// Cells labelled as a taught thing / kept as they were.
    pub positive_cells: usize,
    /// Cells distilled from the old model.
    pub negative_cells: usize,
    /// Concepts added to the bank.
    pub new_concepts: Vec<String>,
    /// Words learned (word -> term).
    pub new_words: Vec<String>,
    /// Showings per taught concept.
    pub showings: Vec<(String, usize)>,
    /// Penalties tried with (held-out view accuracy, agreement with the old model).
    pub lambda_search: Vec<(f64, f64, f64)>,
    /// The chosen penalty.
    pub lambda: f64,
    /// Held-out views of taught concepts classified right (None: one showing only).
    pub heldout_view_accuracy: Option<f64>,
    /// Training views classified right after the update.
    pub train_view_accuracy: f64,
    /// The day's other cells whose top concept is unchanged by the update.
    pub agreement_with_old: f64,
    /// Head rows added.
    pub head_rows_added: usize,
    /// Held-out generated sentences naming what was taught mapped right.
    pub heldout_sentence_accuracy: f64,
    /// Sentences naming old concepts mapped right before / after.
    pub old_sentence_accuracy_before: f64,
    /// After.
    pub old_sentence_accuracy_after: f64,
    /// Held-out sentences naming taught things that the head finds about an object.
    pub taught_sentences_meaningful: f64,
    /// Seconds: parse and embed, vision fit, head fit, total.
    pub seconds_vision: f64,
    /// Head fit seconds.
    pub seconds_language: f64,
    /// Total seconds.
    pub seconds_total: f64,
}

fn descriptions(colour_words: &[String], shape_words: &[String]) -> Vec<String> {
    let mut d = Vec::new();
    for c in colour_words.iter().take(2) {
        for s in shape_words.iter().take(3) {
            d.push(format!("{c} {s}"));
            d.push(format!("a {c} {s}"));
            d.push(format!("the {c} {s}"));
            d.push(format!("a {s} that is {c}"));
            d.push(format!("a {c} coloured {s}"));
        }
    }
    d
}

/// Sleep on the day: learn what `moments` taught on top of `state`. Returns the new state and
/// the night's report, or why nothing was learned (then `state` is what the robot keeps).
pub fn sleep_on(
    state: &BrainState,
    moments: &[Moment],
    lang: &mut dyn Embedder,
    cfg: &NightConfig,
) -> Result<(BrainState, NightReport), NightError> {
    let t0 = Instant::now();
    let budget = |stage: &'static str| {
        if t0.elapsed().as_secs_f64() > cfg.max_seconds {
            Err(NightError::Overtime(cfg.max_seconds, stage))
        } else {
            Ok(())
        }
    };
    if moments.is_empty() {
        return Err(NightError::Empty);
    }
    let old = &state.connector;
    let mut vocab = Vocabulary::new(&state.header.words);
    let mut new_words: Vec<LearnedWord> = Vec::new();
    // 1. What each moment says.
    let mut lessons = Vec::new();
    for (i, m) in moments.iter().enumerate() {
        let refuse = |message: String| NightError::Moment {
            index: i + 1,
            utterance: m.utterance.clone(),
            message,
        };
        let t = utterance::parse(&m.utterance).map_err(|e| refuse(e.to_string()))?;
        let lesson = match t {
            Teaching::Name { modifier, noun, .. } => {
                if m.views.is_empty() || m.views.iter().all(|v| v.positive.is_empty()) {
                    return Err(refuse("no object in view when it was said".into()));
                }
                let colour = match vocab.lookup(&modifier) {
                    Some(("colour", t)) => t,
                    Some((_, t)) => {
                        return Err(refuse(format!(
                            "\"{modifier}\" is a shape ({t}), not a colour"
                        )))
                    }
                    None => {
                        let w = LearnedWord {
                            word: modifier.clone(),
                            kind: "colour".into(),
                            term: modifier.clone(),
                        };
                        vocab.add("colour", &modifier, &modifier);
                        new_words.push(w);
                        modifier.clone()
                    }
                };
                let noun_s = noun.strip_suffix('s').unwrap_or(&noun).to_string();
                let shape = match vocab.lookup(&noun) {
                    Some(("shape", t)) => t,
                    Some((_, t)) => {
                        return Err(refuse(format!(
                        "\"{noun}\" is a colour ({t}); name its shape last (\"the {noun} ball\")"
                    )))
                    }
                    None => {
                        vocab.add("shape", &noun_s, &noun_s);
                        new_words.push(LearnedWord {
                            word: noun_s.clone(),
                            kind: "shape".into(),
                            term: noun_s.clone(),
                        });
                        noun_s
                    }
                };
                Lesson::Sees { colour, shape }
            }
            Teaching::Synonym { word, means } => {
                let Some((kind, term)) = vocab.lookup(&means) else {
                    return Err(refuse(format!(
                        "\"{means}\" is not a colour or shape it knows, so \"{word}\" names nothing it can learn"
                    )));
                };
                if let Some((k2, t2)) = vocab.lookup(&word) {
                    if t2 != term {
                        let prior = new_words
                            .iter()
                            .position(|w| w.word == word)
                            .map(|p| p + 1)
                            .unwrap_or(0);
                        return Err(NightError::Contradiction {
                            a: prior.max(1),
                            b: i + 1,
                            message: format!(
                                "\"{word}\" already names the {k2} {t2}, now it is said to be {means}"
                            ),
                        });
                    }
                }
                let w = LearnedWord {
                    word: word.clone(),
                    kind: kind.into(),
                    term: term.clone(),
                };
                vocab.add(kind, &term, &word);
                new_words.push(w.clone());
                Lesson::Word(w)
            }
        };
        lessons.push(lesson);
    }
    // 2. Contradictions: one thing given two names.
    for i in 0..moments.len() {
        for j in i + 1..moments.len() {
            if let (
                Lesson::Sees {
                    colour: c1,
                    shape: s1,
                },
                Lesson::Sees {
                    colour: c2,
                    shape: s2,
                },
            ) = (&lessons[i], &lessons[j])
            {
                let (a, b) = (&moments[i], &moments[j]);
                let same_place = a.scene == b.scene
                    && (a.target[0] - b.target[0]).hypot(a.target[1] - b.target[1]) < 0.25;
                if same_place && (c1 != c2 || s1 != s2) {
                    return Err(NightError::Contradiction {
                        a: i + 1,
                        b: j + 1,
                        message: format!(
                            "the same object (at {:.2}, {:.2} in {}) is called the {c1} {s1} and the {c2} {s2}",
                            a.target[0], a.target[1], a.scene
                        ),
                    });
                }
            }
        }
    }
    // 3. The bank: old concepts plus the new ones, with prototypes from descriptions.
    let mut names: Vec<String> = old.concepts().iter().map(|c| c.name.clone()).collect();
    let mut new_concepts: Vec<Concept> = Vec::new();
    let mut label_of = vec![usize::MAX; moments.len()];
    for (i, l) in lessons.iter().enumerate() {
        if let Lesson::Sees { colour, shape } = l {
            let name = format!("{colour} {shape}");
            let k = match names.iter().position(|n| *n == name) {
                Some(k) => k,
                None => {
                    let d = descriptions(
                        &vocab.words_of("colour", colour),
                        &vocab.words_of("shape", shape),
                    );
                    let mut p = vec![0.0f32; old.out_dim()];
                    for t in &d {
                        let e = lang.embed_text(t).map_err(NightError::Language)?;
                        for (a, b) in p.iter_mut().zip(&e) {
                            *a += b;
                        }
                    }
                    normalize(&mut p);
                    names.push(name.clone());
                    new_concepts.push(Concept {
                        name,
                        background: false,
                        prototype: p,
                    });
                    names.len() - 1
                }
            };
            label_of[i] = k;
        }
    }
    budget("the concept bank")?;
    // A teaching that names a known concept for a view the old model is sure is another known
    // object contradicts what it already knows.
    let n_old = old.concepts().len();
    {
        let mut z = vec![0.0f32; old.out_dim()];
        let mut sims = vec![0.0f32; n_old];
        for (i, m) in moments.iter().enumerate() {
            let k = label_of[i];
            if k >= n_old {
                continue;
            }
            let mut votes = vec![0usize; n_old];
            let mut total = 0usize;
            for v in &m.views {
                for &c in &v.positive {
                    old.project_token(&v.spatial[c * old.in_dim()..(c + 1) * old.in_dim()], &mut z);
                    old.token_similarities(&z, &mut sims);
                    if let Some(b) = argmax(&sims) {
                        votes[b] += 1;
                        total += 1;
                    }
                }
            }
            if let Some((b, &n)) = votes.iter().enumerate().max_by_key(|x| x.1) {
                let named = votes[k];
                if b != k
                    && !old.concepts()[b].background
                    && n as f64 >= 0.8 * total as f64
                    && (named as f64) < 0.05 * total as f64
                {
                    return Err(NightError::Moment {
                        index: i + 1,
                        utterance: m.utterance.clone(),
                        message: format!(
                            "it is sure it sees the {} there (in {n} of {total} cells), not the {}: contradicts what it knows",
                            old.concepts()[b].name, names[k]
                        ),
                    });
                }
            }
        }
    }
    // 4. Vision side.
    let tv = Instant::now();
    let bank_probe = old
        .updated(
            &vec![0.0; old.in_dim() * old.out_dim()],
            new_concepts.clone(),
        )
        .map_err(|e| NightError::Fit(e.to_string()))?;
    let d = old.in_dim();
    let out = old.out_dim();
    // Showings per concept; the last showing of a concept with two or more is held out.
    let mut showings: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, &k) in label_of.iter().enumerate() {
        if k == usize::MAX {
            continue;
        }
        match showings.iter_mut().find(|s| s.0 == k) {
            Some(s) => s.1.push(i),
            None => showings.push((k, vec![i])),
        }
    }
    let held: Vec<usize> = showings
        .iter()
        .filter(|s| s.1.len() >= 2)
        .filter_map(|s| s.1.last().copied())
        .collect();
    struct Rows {
        x: Vec<f64>,
        r: Vec<f64>,
        n: usize,
        npos: usize,
        labels: Vec<usize>, // concept for positives, usize::MAX for negatives
        old_top: Vec<usize>,
    }
    let new_rows = || Rows {
        x: Vec::new(),
        r: Vec::new(),
        n: 0,
        npos: 0,
        labels: Vec::new(),
        old_top: Vec::new(),
    };
    let (mut train, mut test) = (new_rows(), new_rows());
    let mut xs = vec![0.0f64; d];
    let mut z = vec![0.0f32; out];
    let mut sims_old = vec![0.0f32; n_old];
    let mut positive_cells = 0usize;
    let mut negative_cells = 0usize;
    let mut n_views = 0usize;
    for (i, m) in moments.iter().enumerate() {
        let k = label_of[i];
        if k == usize::MAX {
            continue;
        }
        let rows = if held.contains(&i) {
            &mut test
        } else {
            &mut train
        };
        for v in &m.views {
            n_views += 1;
            if v.spatial.len() % d != 0 {
                return Err(NightError::Fit(format!(
                    "a view of teaching {} has {} values, not a multiple of {d}",
                    i + 1,
                    v.spatial.len()
                )));
            }
            let cells = v.spatial.len() / d;
            for (&c, pos) in v
                .positive
                .iter()
                .map(|c| (c, true))
                .chain(v.negative.iter().map(|c| (c, false)))
            {
                if c >= cells {
                    continue;
                }
                let f = &v.spatial[c * d..(c + 1) * d];
                old.standardise(f, &mut xs);
                old.project_token(f, &mut z);
                old.token_similarities(&z, &mut sims_old);
                rows.old_top.push(argmax(&sims_old).unwrap_or(0));
                rows.x.extend_from_slice(&xs);
                if pos {
                    let p = &bank_probe.concepts()[k].prototype;
                    rows.r
                        .extend(p.iter().zip(&z).map(|(t, o)| (*t - *o) as f64));
                    rows.labels.push(k);
                    rows.npos += 1;
                    positive_cells += 1;
                } else {
                    rows.r.extend(std::iter::repeat_n(0.0, out));
                    rows.labels.push(usize::MAX);
                    negative_cells += 1;
                }
                rows.n += 1;
            }
        }
    }
    let words_only = train.npos == 0 && test.npos == 0;
    if words_only && !lessons.iter().any(|l| matches!(l, Lesson::Word(_))) {
        return Err(NightError::Empty);
    }
    budget("collecting the views")?;
    let gram_of = |rows: &Rows| {
        let mut g = vec![0.0f64; d * d];
        let mut b = vec![0.0f64; d * out];
        add_at_b(&rows.x, &rows.x, rows.n, d, d, &mut g);
        add_at_b(&rows.x, &rows.r, rows.n, d, out, &mut b);
        (g, b)
    };
    let (g_train, b_train) = if words_only {
        (Vec::new(), Vec::new())
    } else {
        gram_of(&train)
    };
    budget("the vision normal equations")?;
    let solve = |g: &[f64], b: &[f64], n: usize, lambda: f64| -> Result<Vec<f64>, NightError> {
        let mut w = b.to_vec();
        solve_spd(g, d, lambda * n.max(1) as f64, &mut w, out)
            .map_err(|e| NightError::Fit(e.to_string()))?;
        Ok(w)
    };
    let score = |c: &AlignConnector, rows: &Rows| -> (f64, f64) {
        let mut z = vec![0.0f32; out];
        let mut sims = vec![0.0f32; c.concepts().len()];
        let (mut hit, mut np, mut agree, mut nn) = (0usize, 0usize, 0usize, 0usize);
        let mut f = vec![0.0f32; d];
        for r in 0..rows.n {
            // Project the standardised row directly (weights applied to standardised features).
            for (o, x) in f.iter_mut().zip(&rows.x[r * d..(r + 1) * d]) {
                *o = *x as f32;
            }
            c.project_standardised(&f, &mut z);
            c.token_similarities(&z, &mut sims);
            let top = argmax(&sims).unwrap_or(0);
            if rows.labels[r] != usize::MAX {
                np += 1;
                hit += (top == rows.labels[r]) as usize;
            } else {
                nn += 1;
                agree += (top == rows.old_top[r]) as usize;
            }
        }
        (
            hit as f64 / np.max(1) as f64,
            if nn == 0 {
                1.0
            } else {
                agree as f64 / nn as f64
            },
        )
    };
    let mut search = Vec::new();
    let mut best = (
        cfg.lambdas.last().copied().unwrap_or(0.1),
        f64::NEG_INFINITY,
    );
    let mut heldout_view_accuracy = None;
    if test.npos > 0 {
        for &lambda in &cfg.lambdas {
            let delta = solve(&g_train, &b_train, train.n, lambda)?;
            let c = old
                .updated(&delta, new_concepts.clone())
                .map_err(|e| NightError::Fit(e.to_string()))?;
            let (acc, agree) = score(&c, &test);
            search.push((lambda, acc, agree));
            // Prefer held-out accuracy, then agreement; ties go to the larger penalty.
            let s = acc + 0.5 * agree;
            if s >= best.1 - 1e-9 {
                best = (lambda, s);
            }
            budget("the penalty search")?;
        }
        let (_, acc, _) = search
            .iter()
            .find(|x| x.0 == best.0)
            .copied()
            .unwrap_or((0.0, 0.0, 0.0));
        heldout_view_accuracy = Some(acc);
    }
    let lambda = best.0;
    // Final fit on every view.
    let (mut g, mut b) = (g_train, b_train);
    if test.n > 0 {
        let (g2, b2) = gram_of(&test);
        g.iter_mut().zip(&g2).for_each(|(a, x)| *a += x);
        b.iter_mut().zip(&b2).for_each(|(a, x)| *a += x);
    }
    let delta = if words_only {
        vec![0.0; d * out]
    } else {
        solve(&g, &b, train.n + test.n, lambda)?
    };
    let mut conn = old
        .updated(&delta, new_concepts.clone())
        .map_err(|e| NightError::Fit(e.to_string()))?;
    let (train_acc, train_agree) = if words_only {
        (1.0, 1.0)
    } else {
        score(&conn, &train)
    };
    let (_, test_agree) = if test.n > 0 {
        score(&conn, &test)
    } else {
        (0.0, train_agree)
    };
    let agreement = (train_agree * (train.n - train.npos) as f64
        + test_agree * (test.n - test.npos) as f64)
        / ((train.n - train.npos) + (test.n - test.npos)).max(1) as f64;
    let seconds_vision = tv.elapsed().as_secs_f64();
    budget("the vision fit")?;
    // 5. Language side: new head rows.
    let tl = Instant::now();
    let Some(head0) = old.instruction_head.clone() else {
        return Err(NightError::Fit(
            "the connector has no instruction head to extend (refit it with `brainloop align`)"
                .into(),
        ));
    };
    // Rows to add: (colour words, shape words, concept).
    let mut row_specs: Vec<(Vec<String>, Vec<String>, usize)> = Vec::new();
    let concept_index = |colour: &str, shape: &str| {
        conn.concepts()
            .iter()
            .position(|c| c.name == format!("{colour} {shape}"))
    };
    for (i, l) in lessons.iter().enumerate() {
        match l {
            Lesson::Sees { colour, shape } => {
                let k = label_of[i];
                if k < n_old || row_specs.iter().any(|r| r.2 == k) {
                    continue; // a known concept: the head already has it
                }
                row_specs.push((
                    vocab.words_of("colour", colour),
                    vocab.words_of("shape", shape),
                    k,
                ));
            }
            Lesson::Word(w) => {
                // Every concept of that term gets a row for the new word.
                let others: Vec<Term> = if w.kind == "colour" {
                    vocab.shapes.clone()
                } else {
                    vocab.colours.clone()
                };
                for o in others {
                    let (c, s) = if w.kind == "colour" {
                        (w.term.clone(), o.name.clone())
                    } else {
                        (o.name.clone(), w.term.clone())
                    };
                    if let Some(k) = concept_index(&c, &s) {
                        let (cw, sw) = if w.kind == "colour" {
                            (vec![w.word.clone()], o.words.clone())
                        } else {
                            (o.words.clone(), vec![w.word.clone()])
                        };
                        row_specs.push((cw, sw, k));
                    }
                }
            }
        }
    }
    // Learned colours and shapes combine with known ones only where a concept exists.
    let _ = vocab.colours.iter().any(|t| t.learned);
    let mut rng = SplitMix::new(cfg.seed);
    let mut pick = |n: usize| rng.below(n);
    let embed_all = |lang: &mut dyn Embedder, t: &[String]| -> Result<Vec<Vec<f32>>, NightError> {
        t.iter()
            .map(|s| lang.embed_text(s).map_err(NightError::Language))
            .collect()
    };
    // Old concepts' sentences (negatives, and the forgetting check).
    let colours: Vec<&str> = crate::world::Colour::ALL.iter().map(|c| c.name()).collect();
    let shapes: Vec<&str> = crate::world::Shape::ALL.iter().map(|s| s.name()).collect();
    let old_sents =
        instruction::sentences(&colours, &shapes, cfg.old_sentences_per_concept, &mut pick);
    let old_embs = embed_all(
        lang,
        &old_sents.iter().map(|s| s.text.clone()).collect::<Vec<_>>(),
    )?;
    let old_labels: Vec<usize> = old_sents.iter().map(|s| head0.outputs[s.output]).collect();
    budget("embedding sentences")?;
    let mut pos_sets: Vec<(Vec<Vec<f32>>, usize)> = Vec::new();
    for (cw, sw, k) in &row_specs {
        let cw: Vec<&str> = cw.iter().map(|s| s.as_str()).collect();
        let sw: Vec<&str> = sw.iter().map(|s| s.as_str()).collect();
        let texts = instruction::sentences_with(&cw, &sw, cfg.sentences_per_row, &mut pick);
        pos_sets.push((embed_all(lang, &texts)?, *k));
        budget("embedding sentences")?;
    }
    let dim = head0.dim();
    let mut head = head0.clone();
    let margin = 6.0 * head0.tau;
    let mut scores = vec![0.0f32; head0.outputs.len()];
    let max_old = |q: &[f32], scores: &mut [f32]| {
        head0.scores(q, scores);
        scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max)
    };
    let is_held = |i: usize| i % 5 == 4;
    for (ri, (pos, k)) in pos_sets.iter().enumerate() {
        // Training rows: this row's sentences (+margin over the old head's best), other rows'
        // and old sentences of other concepts (-margin).
        let mut rows: Vec<(&Vec<f32>, f64, bool)> = Vec::new();
        for (i, q) in pos.iter().enumerate() {
            if !is_held(i) {
                rows.push((q, max_old(q, &mut scores) as f64 + margin as f64, true));
            }
        }
        for (oj, (other, k2)) in pos_sets.iter().enumerate() {
            if oj == ri || k2 == k {
                continue;
            }
            for (i, q) in other.iter().enumerate() {
                if !is_held(i) {
                    rows.push((q, max_old(q, &mut scores) as f64 - margin as f64, false));
                }
            }
        }
        for (i, q) in old_embs.iter().enumerate() {
            if old_labels[i] != *k && !is_held(i) {
                rows.push((q, max_old(q, &mut scores) as f64 - margin as f64, false));
            }
        }
        // Weighted ridge, re-weighting the rows on the wrong side of half the margin (a few
        // rounds of a hinge-like fit).
        let n = rows.len();
        let mut weight = vec![1.0f64; n];
        let (mut w, mut bias) = (vec![0.0f64; dim], 0.0f64);
        for round in 0..4 {
            let wsum: f64 = weight.iter().sum();
            let mut xm = vec![0.0f64; dim];
            let mut tm = 0.0;
            for (r, (q, t, _)) in rows.iter().enumerate() {
                for j in 0..dim {
                    xm[j] += weight[r] * (q[j] - head0.mean[j]) as f64 / wsum;
                }
                tm += weight[r] * t / wsum;
            }
            let mut xs = vec![0.0f64; n * dim];
            let mut ts = vec![0.0f64; n];
            for (r, (q, t, _)) in rows.iter().enumerate() {
                let sw = weight[r].sqrt();
                for j in 0..dim {
                    xs[r * dim + j] = sw * ((q[j] - head0.mean[j]) as f64 - xm[j]);
                }
                ts[r] = sw * (t - tm);
            }
            let mut gq = vec![0.0f64; dim * dim];
            add_at_b(&xs, &xs, n, dim, dim, &mut gq);
            w = vec![0.0f64; dim];
            add_at_b(&xs, &ts, n, dim, 1, &mut w);
            let tr = (0..dim).map(|i| gq[i * dim + i]).sum::<f64>() / dim as f64;
            solve_spd(&gq, dim, 1e-3 * tr.max(1e-12), &mut w, 1)
                .map_err(|e| NightError::Fit(e.to_string()))?;
            bias = tm - w.iter().zip(&xm).map(|(a, b)| a * b).sum::<f64>();
            if round == 3 {
                break;
            }
            let mut wrong = 0;
            for (r, (q, t, is_pos)) in rows.iter().enumerate() {
                let sc = bias
                    + q.iter()
                        .zip(&head0.mean)
                        .zip(&w)
                        .map(|((a, m), wi)| (a - m) as f64 * wi)
                        .sum::<f64>();
                let m = if *is_pos {
                    t - margin as f64
                } else {
                    t + margin as f64
                };
                let bad = if *is_pos {
                    sc < m + 0.5 * margin as f64
                } else {
                    sc > m - 0.5 * margin as f64
                };
                if bad {
                    weight[r] *= 4.0;
                    wrong += 1;
                }
            }
            if wrong == 0 {
                break;
            }
        }
        head.outputs.push(*k);
        head.weights.extend(w.iter().map(|&x| x as f32));
        head.bias.push(bias as f32);
    }
    let head_rows_added = pos_sets.len();
    // Checks on held-out sentences.
    let concepts_n = conn.concepts().len();
    let mut post = vec![0.0f32; concepts_n];
    let accuracy = |h: &InstructionHead, set: &[(&Vec<f32>, usize)], post: &mut [f32]| {
        let hits = set
            .iter()
            .filter(|(q, k)| {
                h.posterior(q, post);
                argmax(post) == Some(*k)
            })
            .count();
        hits as f64 / set.len().max(1) as f64
    };
    let taught_held: Vec<(&Vec<f32>, usize)> = pos_sets
        .iter()
        .flat_map(|(p, k)| {
            p.iter()
                .enumerate()
                .filter(|(i, _)| is_held(*i))
                .map(move |(_, q)| (q, *k))
        })
        .collect();
    let old_set: Vec<(&Vec<f32>, usize)> =
        old_embs.iter().zip(old_labels.iter().copied()).collect();
    let heldout_sentence_accuracy = if taught_held.is_empty() {
        1.0
    } else {
        accuracy(&head, &taught_held, &mut post)
    };
    let old_before = accuracy(&head0, &old_set, &mut post);
    let old_after = accuracy(&head, &old_set, &mut post);
    let meaningful = taught_held
        .iter()
        .filter(|(q, _)| head.objectness(q) >= head.min_objectness)
        .count() as f64
        / taught_held.len().max(1) as f64;
    conn.instruction_head = Some(head);
    let seconds_language = tl.elapsed().as_secs_f64();
    budget("the instruction head")?;
    let mut counts: Vec<(String, usize)> = showings
        .iter()
        .map(|(k, v)| (names[*k].clone(), v.len()))
        .collect();
    counts.sort();
    let report = NightReport {
        moments: moments.len(),
        views: n_views,
        positive_cells,
        negative_cells,
        new_concepts: new_concepts.iter().map(|c| c.name.clone()).collect(),
        new_words: new_words
            .iter()
            .map(|w| format!("{} -> {} {}", w.word, w.kind, w.term))
            .collect(),
        showings: counts,
        lambda_search: search,
        lambda,
        heldout_view_accuracy,
        train_view_accuracy: train_acc,
        agreement_with_old: agreement,
        head_rows_added,
        heldout_sentence_accuracy,
        old_sentence_accuracy_before: old_before,
        old_sentence_accuracy_after: old_after,
        taught_sentences_meaningful: meaningful,
        seconds_vision,
        seconds_language,
        seconds_total: t0.elapsed().as_secs_f64(),
    };
    // 6. Acceptance.
    let mut why = Vec::new();
    let view_acc = heldout_view_accuracy.unwrap_or(train_acc);
    if view_acc < cfg.min_view_accuracy {
        why.push(format!(
            "views of the taught things classified right {:.0} % < {:.0} %",
            100.0 * view_acc,
            100.0 * cfg.min_view_accuracy
        ));
    }
    if agreement < cfg.min_agreement {
        why.push(format!(
            "it would change its answer on {:.1} % of the other cells (at most {:.1} %)",
            100.0 * (1.0 - agreement),
            100.0 * (1.0 - cfg.min_agreement)
        ));
    }
    if heldout_sentence_accuracy < cfg.min_sentence_accuracy {
        why.push(format!(
            "held-out sentences naming what was taught mapped right {:.0} % < {:.0} %",
            100.0 * heldout_sentence_accuracy,
            100.0 * cfg.min_sentence_accuracy
        ));
    }
    if old_after + 0.05 < old_before {
        why.push(format!(
            "sentences naming old things dropped from {:.1} % to {:.1} %",
            100.0 * old_before,
            100.0 * old_after
        ));
    }
    if !why.is_empty() {
        return Err(NightError::Rejected(why.join("; ")));
    }
    let mut header = state.header.clone();
    for w in new_words {
        if !header.words.contains(&w) {
            header.words.push(w);
        }
    }
    header
        .concepts
        .extend(new_concepts.iter().map(|c| c.name.clone()));
    header
        .nights
        .push(serde_json::to_value(&report).unwrap_or(serde_json::Value::Null));
    Ok((
        BrainState {
            header,
            connector: conn,
        },
        report,
    ))
}
