//! The ONNX token classifier, on a tiny model that `tests/data/make_tiny_ner.py` writes: a lookup
//! table from word piece to label (alice → B-PER, smith → I-PER, ac/##me → B-/I-ORG, paris →
//! B-LOC, ...), so every expected entity and byte offset below is exact.
//!
//! Needs the Python in `CROW_TEST_PYTHON` (with numpy and onnx), the ONNX Runtime library and the
//! MiniLM tokenizer from `make models`; skips without them, unless CROW_REQUIRE_MODELS=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crow_core::ports::Entity;
use crow_nlp::NlpError;
use crow_nlp::config::ORT_LIBRARY;
use crow_nlp::onnx::TokenClassifier;

use crate::support;

const TOKENIZER: &str = "all-MiniLM-L6-v2/tokenizer.json";

/// A tiny model written into a temporary directory, and the ONNX Runtime library.
struct Tiny {
    ort: PathBuf,
    dir: tempfile::TempDir,
}

impl Tiny {
    fn load(&self) -> TokenClassifier {
        TokenClassifier::load(&self.ort, self.dir.path()).expect("the tiny model loads")
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

/// The files of each variant of the tiny model (by script arguments), generated once per run:
/// the script takes a second or so, mostly importing onnx.
static GENERATED: Mutex<Vec<(String, Files)>> = Mutex::new(Vec::new());

/// File names and contents.
type Files = Vec<(String, Vec<u8>)>;

/// Writes the tiny model (with the script's extra `args`) into a fresh temporary directory, or
/// returns `None` when the test is skipped.
fn tiny(args: &[&str]) -> Option<Tiny> {
    let models = support::require(ORT_LIBRARY)?;
    support::require(TOKENIZER)?;
    let Some(python) = std::env::var_os("CROW_TEST_PYTHON").filter(|p| !p.is_empty()) else {
        if std::env::var("CROW_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!("CROW_TEST_PYTHON is not set: point it at a Python with numpy and onnx");
        }
        eprintln!("skipped: set CROW_TEST_PYTHON to a Python with numpy and onnx to run the token classifier tests");
        return None;
    };
    let key = args.join(" ");
    let mut generated = GENERATED.lock().unwrap_or_else(|p| p.into_inner());
    if !generated.iter().any(|(k, _)| *k == key) {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/make_tiny_ner.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(dir.path())
            .arg("--tokenizer")
            .arg(models.join(TOKENIZER))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", Path::new(&python).display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let files = ["model.onnx", "tokenizer.json", "config.json"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(dir.path().join(f)).unwrap()))
            .collect();
        generated.push((key.clone(), files));
    }
    let (_, files) = generated.iter().find(|(k, _)| *k == key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    Some(Tiny {
        ort: models.join(ORT_LIBRARY),
        dir,
    })
}

/// (kind, text, start, end) of each entity, after checking that text is the original slice and
/// that exactly the people are PII.
fn spans<'e>(text: &str, entities: &'e [Entity]) -> Vec<(&'e str, &'e str, usize, usize)> {
    for e in entities {
        assert_eq!(&text[e.start..e.end], e.text, "{e:?}");
        assert_eq!(e.pii, e.kind == "person", "{e:?}");
        assert_eq!(e.product_id, None);
    }
    entities
        .iter()
        .map(|e| (e.kind.as_str(), e.text.as_str(), e.start, e.end))
        .collect()
}

const LABELS: [&str; 9] = [
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
];

#[test]
fn finds_people_organizations_and_places() {
    let Some(tiny) = tiny(&[]) else { return };
    let ner = tiny.load();
    assert_eq!(ner.labels(), LABELS);
    assert_eq!(ner.max_length(), 512);

    let text = "Alice Smith works at Acme in Paris.";
    let got = ner.find(text).unwrap();
    assert_eq!(
        spans(text, &got),
        vec![
            ("person", "Alice Smith", 0, 11),
            ("organization", "Acme", 21, 25),
            ("location", "Paris", 29, 34),
        ]
    );
    assert!(got[0].pii && !got[1].pii && !got[2].pii);
    // An I- without a B- starts an entity; "New" is O, so only "York" is a place.
    let text = "smith moved to New York";
    assert_eq!(
        spans(text, &ner.find(text).unwrap()),
        vec![("person", "smith", 0, 5), ("location", "York", 19, 23)]
    );
}

#[test]
fn words_of_several_pieces_and_adjacent_entities() {
    let Some(tiny) = tiny(&[]) else { return };
    let ner = tiny.load();
    // bob = B-PER, Okonkwo = ok(B-PER) ##on ##k ##wo: two people side by side. Kowalczyk =
    // ko(B-PER) ##wal(B-LOC) ##cz ##yk: the first piece decides. Globex = globe(B-ORG) ##x(O);
    // Acmecorp = ac(B-ORG) ##me(I-ORG) ##corp(O). "Acme Paris": an organization then a place.
    let text = "Bob Okonkwo met Kowalczyk at Globex, Acmecorp and Acme Paris.";
    assert_eq!(
        spans(text, &ner.find(text).unwrap()),
        vec![
            ("person", "Bob", 0, 3),
            ("person", "Okonkwo", 4, 11),
            ("person", "Kowalczyk", 16, 25),
            ("organization", "Globex", 29, 35),
            ("organization", "Acmecorp", 37, 45),
            ("organization", "Acme", 50, 54),
            ("location", "Paris", 55, 60),
        ]
    );
}

#[test]
fn offsets_are_bytes_of_the_original_text() {
    let Some(tiny) = tiny(&[]) else { return };
    let ner = tiny.load();
    // "Zoë" is 4 bytes, "👋" 4, "Zürich" 7 (the tokenizer sees "zurich").
    let text = "Zoë 👋 visited Zürich with ALICE";
    assert_eq!(
        spans(text, &ner.find(text).unwrap()),
        vec![("location", "Zürich", 18, 25), ("person", "ALICE", 31, 36)]
    );
    let text = "🎉🎉 Ça va, Smith? Über Paris!";
    assert_eq!(
        spans(text, &ner.find(text).unwrap()),
        vec![("person", "Smith", 17, 22), ("location", "Paris", 30, 35)]
    );
}

#[test]
fn special_tokens_and_empty_texts_give_nothing() {
    let Some(tiny) = tiny(&[]) else { return };
    let ner = tiny.load();
    // The model calls [CLS] and [SEP] B-MISC: they must never become entities.
    for text in ["", "   ", "Hello there.", "👋"] {
        assert_eq!(ner.find(text).unwrap(), Vec::<Entity>::new(), "{text:?}");
    }
}

#[test]
fn low_confidence_tokens_count_as_outside() {
    let Some(tiny) = tiny(&[]) else { return };
    let ner = tiny.load();
    // "nobel" is B-MISC with probability ~0.23 (O ~0.19): an entity unless a minimum score drops it.
    let text = "The Nobel prize went to Alice.";
    assert_eq!(
        spans(text, &ner.find(text).unwrap()),
        vec![("misc", "Nobel", 4, 9), ("person", "Alice", 24, 29)]
    );
    let strict = ner.with_min_score(0.5);
    assert_eq!(
        spans(text, &strict.find(text).unwrap()),
        vec![("person", "Alice", 24, 29)]
    );
    // Every other token has probability ~0.95: 0.96 drops them all.
    assert!(strict.with_min_score(0.96).find(text).unwrap().is_empty());
}

#[test]
fn batches_match_single_texts() {
    let Some(tiny) = tiny(&["--token-type-ids"]) else {
        return;
    };
    let ner = tiny.load().with_batch_size(2);
    let texts = [
        "Alice Smith works at Acme in Paris.",
        "",
        "Nothing here.",
        "Bob Okonkwo met Kowalczyk at Globex.",
        "Zoë 👋 visited Zürich",
    ];
    let batch = ner.find_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, entities) in texts.iter().zip(&batch) {
        assert_eq!(entities, &ner.find(text).unwrap(), "{text:?}");
    }
    assert_eq!(batch.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 0, 0, 4, 1]);
    assert!(ner.find_batch(&[]).unwrap().is_empty());

    // One classifier, several threads.
    let ner = Arc::new(ner);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ner = Arc::clone(&ner);
            std::thread::spawn(move || ner.find("Alice in Paris").unwrap().len())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 2);
    }
}

/// `reps` copies of a sentence whose 14 word pieces hold five entities, and those entities.
fn long_text(reps: usize) -> (String, Vec<(&'static str, String, usize, usize)>) {
    const SENTENCE: &str = "Alice Smith visited Acme in Paris with Bob Okonkwo. ";
    const IN_SENTENCE: [(&str, &str, usize, usize); 5] = [
        ("person", "Alice Smith", 0, 11),
        ("organization", "Acme", 20, 24),
        ("location", "Paris", 28, 33),
        ("person", "Bob", 39, 42),
        ("person", "Okonkwo", 43, 50),
    ];
    let text = SENTENCE.repeat(reps);
    let expected = (0..reps)
        .flat_map(|r| {
            IN_SENTENCE
                .iter()
                .map(move |&(kind, t, s, e)| (kind, t.to_string(), r * SENTENCE.len() + s, r * SENTENCE.len() + e))
        })
        .collect();
    (text, expected)
}

fn owned(text: &str, entities: &[Entity]) -> Vec<(&'static str, String, usize, usize)> {
    spans(text, entities)
        .into_iter()
        .map(|(kind, t, s, e)| {
            let kind = match kind {
                "person" => "person",
                "organization" => "organization",
                "location" => "location",
                other => panic!("unexpected kind {other}"),
            };
            (kind, t.to_string(), s, e)
        })
        .collect()
}

#[test]
fn long_texts_run_in_overlapping_windows() {
    // 16 tokens per window: 14 word pieces, a stride of 3, so windows start every 11 pieces and
    // cut through entities and words ("Alice | Smith", "ok ##on | ##k ##wo") all along the text.
    let Some(tiny) = tiny(&["--max-position-embeddings", "16"]) else {
        return;
    };
    let ner = tiny.load();
    assert_eq!(ner.max_length(), 16);
    let (text, expected) = long_text(9);
    assert_eq!(owned(&text, &ner.find(&text).unwrap()), expected);
    // Every window length cuts differently; the result never changes.
    for max in [5, 7, 12, 13, 40] {
        let config = std::fs::read_to_string(tiny.path("config.json")).unwrap();
        let config = config.replace(
            r#""max_position_embeddings": 16"#,
            &format!(r#""max_position_embeddings": {max}"#),
        );
        let other = tempfile::tempdir().unwrap();
        for file in ["model.onnx", "tokenizer.json"] {
            std::fs::copy(tiny.path(file), other.path().join(file)).unwrap();
        }
        std::fs::write(other.path().join("config.json"), config).unwrap();
        let ner = TokenClassifier::load(&tiny.ort, other.path())
            .unwrap()
            .with_batch_size(3);
        assert_eq!(ner.max_length(), max);
        let got = ner.find_batch(&[&text, "Alice", &text]).unwrap();
        assert_eq!(owned(&text, &got[0]), expected, "max_position_embeddings {max}");
        assert_eq!(owned(&text, &got[2]), expected, "max_position_embeddings {max}");
        assert_eq!(spans("Alice", &got[1]), vec![("person", "Alice", 0, 5)]);
    }

    // Beyond 512 word pieces with the default length (60 × 14 = 840).
    let Some(tiny) = self::tiny(&[]) else { return };
    let (text, expected) = long_text(60);
    assert_eq!(owned(&text, &tiny.load().find(&text).unwrap()), expected);
}

#[test]
fn errors_name_what_is_wrong() {
    let Some(tiny) = tiny(&[]) else { return };

    let missing = tiny.path("nope");
    let err = TokenClassifier::load(&tiny.ort, &missing).unwrap_err();
    assert!(
        matches!(&err, NlpError::ModelNotFound { path, .. } if path == &missing),
        "{err}"
    );

    let config = tiny.path("config.json");
    let original = std::fs::read_to_string(&config).unwrap();

    std::fs::remove_file(&config).unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(
        matches!(&err, NlpError::Model { path, reason } if path == &config && reason.contains("id2label")),
        "{err}"
    );

    std::fs::write(&config, r#"{"model_type": "bert", "max_position_embeddings": 512}"#).unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(
        matches!(&err, NlpError::Model { path, reason } if path == &config && reason.contains("id2label")),
        "{err}"
    );

    std::fs::write(&config, r#"{"id2label": {"0": "O", "1": "B-PER", "2": "I-PER"}}"#).unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(
        matches!(&err, NlpError::Model { path, reason } if path == &tiny.path("model.onnx") && reason.contains("9 labels")),
        "{err}"
    );

    std::fs::write(
        &config,
        original.replace(r#""max_position_embeddings": 512"#, r#""max_position_embeddings": 3"#),
    )
    .unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(matches!(&err, NlpError::Model { path, .. } if path == &config), "{err}");

    std::fs::write(&config, &original).unwrap();
    let tokenizer = tiny.path("tokenizer.json");
    std::fs::rename(&tokenizer, tiny.path("elsewhere.json")).unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(
        matches!(&err, NlpError::ModelNotFound { path, .. } if path == &tokenizer),
        "{err}"
    );

    std::fs::rename(tiny.path("elsewhere.json"), &tokenizer).unwrap();
    let model = tiny.path("model.onnx");
    std::fs::write(&model, b"not a model").unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(matches!(&err, NlpError::Model { path, .. } if path == &model), "{err}");
    std::fs::remove_file(&model).unwrap();
    let err = TokenClassifier::load(&tiny.ort, tiny.dir.path()).unwrap_err();
    assert!(
        matches!(&err, NlpError::ModelNotFound { path, .. } if path == &model),
        "{err}"
    );
}
