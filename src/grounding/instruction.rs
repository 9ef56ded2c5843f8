//! The instruction head: how an instruction's language embedding becomes a posterior over the
//! object concepts the robot has learned to see, and whether it is about any of them at all.
//!
//! The concept prototypes are short descriptions ("a red ball"); instructions are sentences ("could
//! you head to the red ball please"), whose embeddings also carry the verb, politeness and filler.
//! A nearest-prototype rule confuses those with the object. The head is a linear classifier
//! (closed-form ridge regression on one-hot targets) fitted on several thousand instruction
//! sentences generated from templates, colour words and shape words, so it learns which directions
//! of the embedding name the object and which are phrasing. Whether a sentence is about an object
//! at all is the cosine to the mean of those sentences, with a threshold set between them and a
//! list of sentences that are not (greetings, questions, other tasks).
//!
//! Nothing here reads words at run time: [`InstructionHead::posterior`] sees only the embedding.
//! The vocabulary below is training data. The held-out paraphrase set
//! (`tests/fixtures/grounding/paraphrases.toml`) deliberately uses other colour and shape words and
//! other verbs, so its score measures generalisation, not recall.

use crate::util::linalg::{add_at_b, solve_spd};
use serde::{Deserialize, Serialize};

/// A fitted instruction head (stored in the connector file's header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstructionHead {
    /// Concept index (in the connector's concept list) of each output.
    pub outputs: Vec<usize>,
    /// Embedding mean of the training sentences.
    pub mean: Vec<f32>,
    /// `outputs.len() x dim`, row-major.
    pub weights: Vec<f32>,
    /// Per output.
    pub bias: Vec<f32>,
    /// Softmax temperature on the outputs.
    pub tau: f32,
    /// Unit mean of the on-topic training sentences.
    pub centroid: Vec<f32>,
    /// Objectness above which a sentence is about an object.
    pub min_objectness: f32,
    /// "About an object at all" as a linear classifier on the embedding (minus `mean`), fitted
    /// on instructions naming objects against the same sentence frames naming places and other
    /// things, and off-topic sentences. Absent in older files: objectness is then the cosine
    /// to `centroid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<AboutClassifier>,
}

/// Weights and bias of the "about an object" classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AboutClassifier {
    /// One weight per embedding dimension.
    pub weights: Vec<f32>,
    /// Bias.
    pub bias: f32,
}

impl InstructionHead {
    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Whether the shapes agree with a connector of `concepts` concepts and width `dim`.
    pub fn check(&self, concepts: usize, dim: usize) -> Result<(), String> {
        let k = self.outputs.len();
        if self.mean.len() != dim
            || self.centroid.len() != dim
            || self.weights.len() != k * dim
            || self.bias.len() != k
            || self.outputs.iter().any(|&o| o >= concepts)
            || !(self.tau.is_finite() && self.tau > 0.0)
            || self.about.as_ref().is_some_and(|a| a.weights.len() != dim)
        {
            return Err("instruction head does not match the connector".into());
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        if !(finite(&self.mean)
            && finite(&self.centroid)
            && finite(&self.weights)
            && finite(&self.bias)
            && self.min_objectness.is_finite()
            && self
                .about
                .as_ref()
                .is_none_or(|a| finite(&a.weights) && a.bias.is_finite()))
        {
            return Err(
                "instruction head has a non-finite value: rebuild with `brainloop align`".into(),
            );
        }
        Ok(())
    }

    /// How much `q` is about an object: the classifier's score, or (older files) the cosine
    /// with the on-topic centroid. Compare with `min_objectness`.
    pub fn objectness(&self, q: &[f32]) -> f32 {
        if let Some(a) = &self.about {
            return a.bias
                + q.iter()
                    .zip(&self.mean)
                    .zip(&a.weights)
                    .map(|((x, m), w)| (x - m) * w)
                    .sum::<f32>();
        }
        self.centroid_cosine(q)
    }

    fn centroid_cosine(&self, q: &[f32]) -> f32 {
        let n = q.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        q.iter()
            .zip(&self.centroid)
            .map(|(a, b)| a * b)
            .sum::<f32>()
            / n
    }

    /// Score of output row `r` for `q` (bias plus weights on the centred embedding).
    #[inline]
    fn row_score(&self, r: usize, q: &[f32]) -> f32 {
        let d = self.dim();
        let w = &self.weights[r * d..(r + 1) * d];
        let mut s = self.bias[r];
        for ((x, mu), wi) in q.iter().zip(&self.mean).zip(w) {
            s += (x - mu) * wi;
        }
        s
    }

    /// Raw scores of every output row into `out` (`outputs.len()` long).
    pub fn scores(&self, q: &[f32], out: &mut [f32]) {
        for (r, o) in out.iter_mut().enumerate().take(self.outputs.len()) {
            *o = self.row_score(r, q);
        }
    }

    /// Posterior over the connector's concepts (zero for those the head does not output) into
    /// `out` (`concepts` long). Several rows may name the same concept (a synonym learned in
    /// sleep: "vermilion" rows for the red concepts): their probabilities add up.
    /// Allocation-free.
    pub fn posterior(&self, q: &[f32], out: &mut [f32]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        let mut m = f32::NEG_INFINITY;
        for r in 0..self.outputs.len() {
            m = m.max(self.row_score(r, q));
        }
        if !m.is_finite() {
            return;
        }
        let mut z = 0.0;
        for (r, &o) in self.outputs.iter().enumerate() {
            let e = ((self.row_score(r, q) - m) / self.tau).exp();
            if let Some(x) = out.get_mut(o) {
                *x += e;
                z += e;
            }
        }
        if z > 0.0 && z.is_finite() {
            out.iter_mut().for_each(|x| *x /= z);
        } else {
            out.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

/// Training colour words per colour name: the plain word, common synonyms and shades (the
/// held-out paraphrase set uses none of them).
pub fn colour_words(colour: &str) -> &'static [&'static str] {
    match colour {
        "red" => &[
            "red",
            "crimson",
            "scarlet",
            "ruby",
            "cherry red",
            "bright red",
        ],
        "green" => &[
            "green",
            "emerald",
            "lime",
            "jade",
            "forest green",
            "grass green",
        ],
        "blue" => &["blue", "azure", "navy", "cobalt", "sky blue", "royal blue"],
        "yellow" => &[
            "yellow",
            "golden",
            "gold",
            "mustard",
            "canary yellow",
            "bright yellow",
        ],
        "purple" => &["purple", "violet", "lilac", "lavender", "plum", "mauve"],
        "orange" => &[
            "orange",
            "tangerine",
            "apricot",
            "carrot orange",
            "bright orange",
            "pumpkin",
        ],
        _ => &[],
    }
}

/// Training shape words per shape name.
pub fn shape_words(shape: &str) -> &'static [&'static str] {
    match shape {
        "ball" => &[
            "ball",
            "sphere",
            "orb",
            "globe",
            "round ball",
            "bouncy ball",
        ],
        "cube" => &["cube", "box", "block", "crate", "cuboid", "square block"],
        "cylinder" => &[
            "cylinder", "can", "tube", "pillar", "column", "post", "pole",
        ],
        _ => &[],
    }
}

/// How an object is named inside a sentence (`{c}` colour, `{s}` shape).
const OBJECT_FORMS: [&str; 4] = [
    "{c} {s}",
    "{s} that is {c}",
    "{c} coloured {s}",
    "{c} one, the {s}",
];

/// Instruction templates (`{}` the object phrase).
const TEMPLATES: [&str; 32] = [
    "go to the {}",
    "drive to the {}",
    "find the {}",
    "move to the {}",
    "head to the {}",
    "navigate to the {}",
    "approach the {}",
    "reach the {}",
    "get to the {}",
    "look for the {}",
    "go towards the {}",
    "drive up to the {}",
    "can you go to the {}",
    "please go to the {}",
    "I want you to go to the {}",
    "go over to the {}",
    "stop next to the {}",
    "go near the {}",
    "the {}",
    "a {}",
    "find a {} and go to it",
    "go and find the {}",
    "drive towards the {} please",
    "could you find the {}",
    "move close to the {}",
    "come to the {}",
    "go up to the {}",
    "your goal is the {}",
    "seek out the {}",
    "travel to the {}",
    "park beside the {}",
    "hey robot, go to the {}",
];

/// Sentences about nothing the robot can see: greetings, questions, other tasks, places.
pub const OFF_TOPIC: [&str; 40] = [
    "hello",
    "what time is it",
    "tell me a joke",
    "the weather is nice today",
    "good morning",
    "how are you",
    "xyzzy",
    "thank you very much",
    "play some music",
    "turn off the lights",
    "what is your name",
    "banana",
    "go to the kitchen",
    "open the door",
    "bring me a coffee",
    "follow me",
    "go home",
    "what is two plus two",
    "who wrote this program",
    "set an alarm for seven",
    "read me the news",
    "I like pizza",
    "it is raining outside",
    "call my mother",
    "lorem ipsum dolor sit amet",
    "asdf jkl",
    "the meeting is at noon",
    "my favourite film is long",
    "order more paper towels",
    "how tall is a giraffe",
    "good night",
    "please be quiet",
    "translate this into german",
    "what did you have for breakfast",
    "charge your battery",
    "go to sleep",
    "ok",
    "nothing",
    "why is the sky dark at night",
    "check my email",
];

/// Things that are not objects the robot can see, named in the instruction templates as
/// negatives for the "about an object" classifier (places, furniture, people, other things).
pub const NOT_OBJECTS: [&str; 30] = [
    "kitchen",
    "front door",
    "sofa",
    "desk",
    "window",
    "charging station",
    "fridge",
    "bathroom",
    "garden",
    "garage",
    "bedroom",
    "office",
    "stairs",
    "dining table",
    "chair",
    "living room",
    "hallway",
    "entrance",
    "exit sign",
    "corner of the room",
    "lamp",
    "television",
    "bookshelf",
    "printer",
    "lift",
    "person",
    "dog",
    "cat",
    "car park",
    "laundry",
];

/// Negative sentences for the "about an object" classifier: every template with each of
/// [`NOT_OBJECTS`], `per_thing` times, drawn with `next(n)`.
pub fn not_object_sentences(per_thing: usize, next: &mut dyn FnMut(usize) -> usize) -> Vec<String> {
    let mut v = Vec::new();
    for thing in NOT_OBJECTS {
        for _ in 0..per_thing {
            v.push(TEMPLATES[next(TEMPLATES.len())].replace("{}", thing));
        }
    }
    v
}

/// `n` instruction sentences naming an object with one of `colour_words` and one of
/// `shape_words` (the same object forms and templates as [`sentences`]), drawn with `next(n)`:
/// what a night of learning trains a taught word on.
pub fn sentences_with(
    colour_words: &[&str],
    shape_words: &[&str],
    n: usize,
    next: &mut dyn FnMut(usize) -> usize,
) -> Vec<String> {
    if colour_words.is_empty() || shape_words.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|_| {
            let form = OBJECT_FORMS[next(OBJECT_FORMS.len())];
            let obj = form
                .replace("{c}", colour_words[next(colour_words.len())])
                .replace("{s}", shape_words[next(shape_words.len())]);
            TEMPLATES[next(TEMPLATES.len())].replace("{}", &obj)
        })
        .collect()
}

/// One generated training sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// The text.
    pub text: String,
    /// Output index (object concept order: colours x shapes).
    pub output: usize,
}

/// `per_concept` instruction sentences for each (colour, shape), drawn with `next(n)` (a
/// seeded index source), so the set is the same for a seed.
pub fn sentences(
    colours: &[&str],
    shapes: &[&str],
    per_concept: usize,
    next: &mut dyn FnMut(usize) -> usize,
) -> Vec<Sentence> {
    let mut v = Vec::new();
    for (ci, c) in colours.iter().enumerate() {
        for (si, s) in shapes.iter().enumerate() {
            let cw = colour_words(c);
            let sw = shape_words(s);
            for _ in 0..per_concept {
                let form = OBJECT_FORMS[next(OBJECT_FORMS.len())];
                let obj = form
                    .replace("{c}", cw[next(cw.len())])
                    .replace("{s}", sw[next(sw.len())]);
                let t = TEMPLATES[next(TEMPLATES.len())].replace("{}", &obj);
                v.push(Sentence {
                    text: t,
                    output: ci * shapes.len() + si,
                });
            }
        }
    }
    v
}

/// Fit the head. The concepts are colour x shape (`labels[i] = colour * shapes + shape`), and
/// the head is fitted factor by factor: one ridge regression from the embedding to the colour
/// (one-hot), one to the shape, and a concept's score is the sum of its colour's and its shape's
/// scores (still one linear map, stored as such). A factor is learned from every sentence that
/// names it, whatever the other word, so phrasings and word combinations never seen together in
/// training still score right; a direct 18-way fit learns the template words along with the
/// object and fails on new templates ("head towards that red ball"). The penalty is chosen on a
/// held-out fifth, the temperature so training sentences get >= 0.97 on their concept on
/// average. "About an object" is a second ridge regression: `embs` against `off` (off-topic
/// sentences and sentence frames naming things that are not objects), classes weighted
/// equally, strongly regularised (it must carry over to sentences unlike both), its threshold
/// set between the two. `outputs` maps head outputs to connector concepts. Returns the head and the
/// validation accuracy.
pub fn fit(
    embs: &[Vec<f32>],
    labels: &[usize],
    shapes: usize,
    outputs: Vec<usize>,
    off: &[Vec<f32>],
) -> Result<(InstructionHead, f64), String> {
    let n = embs.len();
    let d = embs.first().map_or(0, |e| e.len());
    let k = outputs.len();
    if n < 10 || d == 0 || shapes == 0 || k < 2 || k % shapes != 0 || labels.len() != n {
        return Err("too few instruction sentences".into());
    }
    if labels.iter().any(|&l| l >= k) {
        return Err("instruction label out of range".into());
    }
    let colours = k / shapes;
    let mut mean = vec![0.0f64; d];
    for e in embs {
        for (m, x) in mean.iter_mut().zip(e) {
            *m += *x as f64 / n as f64;
        }
    }
    // Ridge from the centred embeddings of `rows` to one-hot `class(label)` of `classes`:
    // weights (`d x classes`) and bias.
    let solve = |rows: &[usize],
                 lambda: f64,
                 classes: usize,
                 class: &dyn Fn(usize) -> usize|
     -> Result<(Vec<f64>, Vec<f64>), String> {
        let m = rows.len();
        let mut x = vec![0.0f64; m * d];
        let mut y = vec![0.0f64; m * classes];
        for (i, &r) in rows.iter().enumerate() {
            for j in 0..d {
                x[i * d + j] = embs[r][j] as f64 - mean[j];
            }
            y[i * classes + class(labels[r])] = 1.0;
        }
        let mut bias = vec![0.0f64; classes];
        for i in 0..m {
            for c in 0..classes {
                bias[c] += y[i * classes + c] / m as f64;
            }
        }
        for i in 0..m {
            for c in 0..classes {
                y[i * classes + c] -= bias[c];
            }
        }
        let mut g = vec![0.0f64; d * d];
        add_at_b(&x, &x, m, d, d, &mut g);
        let tr = (0..d).map(|i| g[i * d + i]).sum::<f64>() / d as f64;
        let mut b = vec![0.0f64; d * classes];
        add_at_b(&x, &y, m, d, classes, &mut b);
        solve_spd(&g, d, lambda * tr.max(1e-12), &mut b, classes).map_err(|e| e.to_string())?;
        Ok((b, bias))
    };
    let by_colour = move |l: usize| l / shapes;
    let by_shape = move |l: usize| l % shapes;
    // The concept head composed from the two factor heads: `d x k` and `k`.
    let compose = |rows: &[usize], lambda: f64| -> Result<(Vec<f64>, Vec<f64>), String> {
        let (wc, bc) = solve(rows, lambda, colours, &by_colour)?;
        let (ws, bs) = solve(rows, lambda, shapes, &by_shape)?;
        let mut w = vec![0.0f64; d * k];
        let mut b = vec![0.0f64; k];
        for c in 0..colours {
            for s in 0..shapes {
                let o = c * shapes + s;
                b[o] = bc[c] + bs[s];
                for j in 0..d {
                    w[j * k + o] = wc[j * colours + c] + ws[j * shapes + s];
                }
            }
        }
        Ok((w, b))
    };
    let score = |w: &[f64], bias: &[f64], e: &[f32]| -> Vec<f64> {
        (0..k)
            .map(|c| {
                bias[c]
                    + (0..d)
                        .map(|j| (e[j] as f64 - mean[j]) * w[j * k + c])
                        .sum::<f64>()
            })
            .collect()
    };
    let argmax = |v: &[f64]| {
        v.iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (i, &x)| if x > b.1 { (i, x) } else { b },
            )
            .0
    };
    let (fit_rows, val_rows): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 5 != 4);
    let mut best = (1e-2, -1.0);
    for lambda in [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1] {
        let (w, b) = compose(&fit_rows, lambda)?;
        let acc = val_rows
            .iter()
            .filter(|&&r| argmax(&score(&w, &b, &embs[r])) == labels[r])
            .count() as f64
            / val_rows.len().max(1) as f64;
        if acc > best.1 + 1e-9 {
            best = (lambda, acc);
        }
    }
    let all: Vec<usize> = (0..n).collect();
    let (w, b) = compose(&all, best.0)?;
    // Row-major outputs x dim.
    let mut weights = vec![0.0f32; k * d];
    for c in 0..k {
        for j in 0..d {
            weights[c * d + j] = w[j * k + c] as f32;
        }
    }
    let mut head = InstructionHead {
        outputs,
        mean: mean.iter().map(|&x| x as f32).collect(),
        weights,
        bias: b.iter().map(|&x| x as f32).collect(),
        tau: 0.1,
        centroid: vec![0.0; d],
        min_objectness: 0.0,
        about: None,
    };
    // Temperature: the softest that still gives >= 0.97 on average (sharp enough to tell a
    // purple cube from a purple ball).
    let concepts = head.outputs.iter().copied().max().unwrap_or(0) + 1;
    let mut post = vec![0.0f32; concepts];
    let mut tau = 0.02f32;
    for t in [0.02f32, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2] {
        head.tau = t;
        let mean_p: f64 = (0..n)
            .map(|r| {
                head.posterior(&embs[r], &mut post);
                post[head.outputs[labels[r]]] as f64
            })
            .sum::<f64>()
            / n as f64;
        if mean_p >= 0.97 {
            tau = t;
        }
    }
    head.tau = tau;
    // The centroid (kept for the record and for older readers).
    let mut c: Vec<f32> = head.mean.clone();
    let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    c.iter_mut().for_each(|x| *x /= norm);
    head.centroid = c;
    // "About an object": weighted ridge, positives +1/2 and negatives -1/2, each class weighing
    // half.
    if !off.is_empty() {
        // Rows scaled by the square root of their weight: X'X and X'y are then the weighted sums.
        let (np, nn) = (embs.len() as f64, off.len() as f64);
        let rows: Vec<(&Vec<f32>, f64, f64)> = embs
            .iter()
            .map(|e| (e, 0.5, (0.5 / np).sqrt()))
            .chain(off.iter().map(|e| (e, -0.5, (0.5 / nn).sqrt())))
            .collect();
        let m = rows.len();
        let mut x = vec![0.0f64; m * d];
        let mut y = vec![0.0f64; m];
        for (i, (e, target, sw)) in rows.iter().enumerate() {
            for j in 0..d {
                x[i * d + j] = sw * (e[j] as f64 - mean[j]);
            }
            y[i] = sw * target;
        }
        let mut g = vec![0.0f64; d * d];
        add_at_b(&x, &x, m, d, d, &mut g);
        let mut rhs = vec![0.0f64; d];
        add_at_b(&x, &y, m, d, 1, &mut rhs);
        // No bias term: the threshold below absorbs the offset.
        let tr = (0..d).map(|i| g[i * d + i]).sum::<f64>() / d as f64;
        solve_spd(&g, d, 0.3 * tr.max(1e-12), &mut rhs, 1).map_err(|e| e.to_string())?;
        head.about = Some(AboutClassifier {
            weights: rhs.iter().map(|&x| x as f32).collect(),
            bias: 0.0,
        });
    }
    let mut on: Vec<f32> = embs.iter().map(|e| head.objectness(e)).collect();
    on.sort_by(f32::total_cmp);
    let on_low = on[on.len() / 100];
    let off_high = off
        .iter()
        .map(|e| head.objectness(e))
        .fold(f32::NEG_INFINITY, f32::max);
    // Lean towards accepting: held-out phrasings sit further from the training sentences.
    head.min_objectness = if off_high < on_low {
        off_high + 0.4 * (on_low - off_high)
    } else {
        (off_high + on_low) / 2.0
    };
    Ok((head, best.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_cover_every_concept_and_are_seeded() {
        let mut i = 0usize;
        let mut next = |n: usize| {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (i >> 33) % n
        };
        let s = sentences(&["red", "blue"], &["ball", "cube"], 5, &mut next);
        assert_eq!(s.len(), 20);
        for o in 0..4 {
            assert_eq!(s.iter().filter(|x| x.output == o).count(), 5);
        }
        assert!(s.iter().all(|x| !x.text.contains('{')));
    }

    #[test]
    fn fitted_head_separates_toy_directions_and_rejects_off_topic() {
        // Embeddings: a shared "instruction" direction plus a concept direction plus noise.
        let d = 12;
        let mut seed = 7u64;
        let mut noise = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        };
        let mut embs = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200 {
            let k = i % 3;
            let mut e: Vec<f32> = (0..d).map(|_| noise()).collect();
            e[0] += 1.0;
            e[1 + k] += 1.0;
            embs.push(e);
            labels.push(k);
        }
        let off: Vec<Vec<f32>> = (0..10)
            .map(|_| {
                let mut e: Vec<f32> = (0..d).map(|_| noise()).collect();
                e[8] += 1.0;
                e
            })
            .collect();
        let (head, acc) = fit(&embs, &labels, 3, vec![4, 5, 6], &off).unwrap();
        assert!(acc > 0.95, "{acc}");
        head.check(7, d).unwrap();
        let mut post = vec![0.0f32; 7];
        let mut q = vec![0.0f32; d];
        q[0] = 1.0;
        q[2] = 1.0;
        head.posterior(&q, &mut post);
        assert!(
            post[5] > 0.9 && post[..4].iter().all(|&p| p == 0.0),
            "{post:?}"
        );
        assert!(head.objectness(&q) >= head.min_objectness);
        assert!(head.objectness(&off[0]) < head.min_objectness);
    }
}
