//! Language detection and key phrases. Pure Rust, wasm32-clean.
//!
//! - [`detect_language`]: [whatlang](https://docs.rs/whatlang) 0.18 (trigram and alphabet
//!   models of 70 languages), answered as an ISO 639-1 code only when the answer is
//!   trustworthy;
//! - [`key_phrases`]: RAKE, Rapid Automatic Keyword Extraction (Rose, Engel, Cramer and Cowley,
//!   *Automatic keyword extraction from individual documents*, 2010), with the Snowball English
//!   stop list (`data/stopwords-en.txt`, BSD-3-Clause, plus a few marked CROW additions).
//!
//! Cost, measured in release on the 2-core development machine: `detect_language` ~150 µs
//! for a sentence (whatlang scores the trigrams of every candidate language; at most 4 KiB are
//! read, so long texts cost the same); `key_phrases` ~80 ms for 1 MB of text.
//!
//! ```
//! use crow_nlp::lang::{detect_language, key_phrases};
//!
//! assert_eq!(detect_language("The delivery was late but the staff were very friendly and helpful.").as_deref(), Some("en"));
//! assert_eq!(detect_language("Die Lieferung kam leider viel zu spät an.").as_deref(), Some("de"));
//! assert_eq!(detect_language("ok"), None);
//! assert_eq!(detect_language("12345 678"), None);
//!
//! let phrases = key_phrases("The battery life is excellent, but the charging cable broke after two days.", 3);
//! assert_eq!(phrases, ["charging cable broke", "battery life", "two days"]);
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use whatlang::Lang;

/// Bytes of text given to the language detector: the first 4 KiB (cut on a `char` boundary),
/// plenty for a confident answer and a bound on the cost of long texts.
const DETECT_SAMPLE: usize = 4096;
/// whatlang's confidence (0..1) needed when the answer is not "reliable".
const MIN_CONFIDENCE: f64 = 0.5;
/// Words (whitespace-separated tokens with a letter) needed when the answer is not reliable.
const MIN_WORDS: usize = 3;

/// The language of `text` as an ISO 639-1 code (`"en"`, `"de"`, `"fr"`, `"zh"`, ...), or None
/// when it cannot be told with confidence.
///
/// The rule:
/// 1. only the first 4 KiB of the text are read;
/// 2. text with fewer than 3 letters is None (empty, numbers, `ok`, emoji);
/// 3. whatlang detects the language; its answer is taken when whatlang calls it reliable
///    (confidence above 0.9 with a clear margin over the runner-up), or when the confidence is
///    at least 0.5 and the text has at least 3 words (whitespace-separated tokens with a letter);
///    short texts (`Danke schön`) are None unless whatlang is sure;
/// 4. otherwise — whatlang's trigram statistics are weak on the short texts customers write
///    (`Refund of $45 still missing`) — function words decide among English, German, French,
///    Spanish, Italian, Portuguese and Dutch: the language with at least 2 of the text's words
///    in its list of common function words, and more than any other, wins;
/// 5. the answer is mapped from ISO 639-3 to ISO 639-1. Every language whatlang 0.18 knows has
///    a 639-1 code (Mandarin is `zh`, Norwegian Bokmål `nb`, Iranian Persian `fa`).
///
/// ```
/// use crow_nlp::lang::detect_language;
/// assert_eq!(detect_language("The Trail Runner 42 is not bad at all, better than my Hoka").as_deref(), Some("en"));
/// assert_eq!(detect_language("Das ist nicht mein Paket").as_deref(), Some("de"));
/// assert_eq!(detect_language("not bad"), None);
/// ```
pub fn detect_language(text: &str) -> Option<String> {
    let sample = head(text, DETECT_SAMPLE);
    let letters = sample.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 3 {
        return None;
    }
    let info = whatlang::detect(sample)?;
    let words = sample
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    let trusted = info.is_reliable() || (info.confidence() >= MIN_CONFIDENCE && words >= MIN_WORDS);
    if !trusted {
        return function_word_vote(sample).map(str::to_owned);
    }
    iso639_1(info.lang()).map(str::to_owned)
}

/// Common function words of the languages customers of a European shop write most.
const FUNCTION_WORDS: [(&str, &str); 7] = [
    (
        "en",
        "the a an and or but is are was were be been it this that to of in on for with my your not at all than i \
         you we they have has had do does did so very no from by as me our can will would just too again never",
    ),
    (
        "de",
        "der die das und ist nicht ein eine ich sie es mit auf für von zu den dem war sehr aber auch wir mein \
         kein noch nur wie bei leider",
    ),
    (
        "fr",
        "le la les et est un une je il elle pas ne avec pour des du de que qui très mais sur mon nous vous ce \
         cette était trop",
    ),
    (
        "es",
        "el la los las y es un una yo no con para por de que muy pero en mi del se lo fue está este esta como",
    ),
    (
        "it",
        "il lo la gli le e è un una io non con per di che molto ma in mio del della sono era questo questa come",
    ),
    (
        "pt",
        "o a os as e é um uma eu não com para por de que muito mas em meu do da foi está este esta como",
    ),
    (
        "nl",
        "de het een en is niet ik je met voor van dat die zeer maar op mijn was ook naar te heel geen wel",
    ),
];

/// The language whose function words the text uses most (at least 2, and strictly more than
/// any other language).
fn function_word_vote(sample: &str) -> Option<&'static str> {
    let words: Vec<String> = sample
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut scores: Vec<(usize, &'static str)> = FUNCTION_WORDS
        .iter()
        .map(|(lang, list)| {
            let hits = words
                .iter()
                .filter(|w| list.split(' ').any(|f| f == w.as_str()))
                .count();
            (hits, *lang)
        })
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.0));
    match (scores.first(), scores.get(1)) {
        (Some(&(best, lang)), Some(&(second, _))) if best >= 2 && best > second => Some(lang),
        _ => None,
    }
}

use crate::prefix as head;

/// ISO 639-1 code of a whatlang language (None for a language without one; whatlang 0.18 has
/// none such, the match is exhaustive so a new version's languages must be mapped here).
fn iso639_1(lang: Lang) -> Option<&'static str> {
    Some(match lang {
        Lang::Epo => "eo",
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Ben => "bn",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Kat => "ka",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Heb => "he",
        Lang::Yid => "yi",
        Lang::Pol => "pl",
        Lang::Amh => "am",
        Lang::Jav => "jv",
        Lang::Kor => "ko",
        Lang::Nob => "nb",
        Lang::Dan => "da",
        Lang::Swe => "sv",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Nld => "nl",
        Lang::Hun => "hu",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Bul => "bg",
        Lang::Bel => "be",
        Lang::Mar => "mr",
        Lang::Kan => "kn",
        Lang::Ron => "ro",
        Lang::Slv => "sl",
        Lang::Hrv => "hr",
        Lang::Srp => "sr",
        Lang::Mkd => "mk",
        Lang::Lit => "lt",
        Lang::Lav => "lv",
        Lang::Est => "et",
        Lang::Tam => "ta",
        Lang::Vie => "vi",
        Lang::Urd => "ur",
        Lang::Tha => "th",
        Lang::Guj => "gu",
        Lang::Uzb => "uz",
        Lang::Pan => "pa",
        Lang::Aze => "az",
        Lang::Ind => "id",
        Lang::Tel => "te",
        Lang::Pes => "fa",
        Lang::Mal => "ml",
        Lang::Ori => "or",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Sin => "si",
        Lang::Khm => "km",
        Lang::Tuk => "tk",
        Lang::Aka => "ak",
        Lang::Zul => "zu",
        Lang::Sna => "sn",
        Lang::Afr => "af",
        Lang::Lat => "la",
        Lang::Slk => "sk",
        Lang::Cat => "ca",
        Lang::Tgl => "tl",
        Lang::Hye => "hy",
        Lang::Cym => "cy",
    })
}

/// The committed English stop list (see the file's header for its source and licence).
const STOPWORDS_EN: &str = include_str!("../data/stopwords-en.txt");

fn stopwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        STOPWORDS_EN
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Most words in one key phrase.
const MAX_PHRASE_WORDS: usize = 3;

/// The `k` best key phrases of `text`, best first, lowercase, without duplicates (RAKE).
///
/// 1. The text is lowercased and cut into *candidate phrases* at punctuation (anything but
///    letters, digits, whitespace, and `'` or `-` inside a word) and at stopwords (the English
///    stop list in `data/stopwords-en.txt`). A word's possessive `'s` is dropped (`apple's` →
///    `apple`); typographic apostrophes count as `'`.
///    URLs, e-mail addresses and handles (whitespace-separated chunks with `://` or `@`, or
///    starting with `www.`) delimit phrases and are not words.
///    Numbers (tokens without a letter: `2`, `30`, `10-15`) delimit phrases too, as in the
///    reference implementation; words mixing letters and digits (`s24`, `wh-1000xm5`) are words.
/// 2. A candidate of more than 3 words is cut into consecutive pieces of at most 3, as even as
///    possible (4 words → 2 + 2, 5 → 3 + 2, 7 → 3 + 2 + 2), so run-on text without punctuation
///    still yields phrases.
/// 3. Each word is scored degree / frequency, where frequency is how often it occurs in the
///    candidates and degree is the sum of the lengths (in words) of the candidates it occurs
///    in; a phrase scores the sum of its words' scores. Longer phrases of words that occur only
///    in them score highest, as RAKE intends.
/// 4. Equal phrases are one (scored once); ties are broken by first occurrence.
///
/// The stop list is English: other languages get poorer phrases (cut at punctuation only).
/// `k = 0` or text without words gives an empty list.
pub fn key_phrases(text: &str, k: usize) -> Vec<String> {
    if k == 0 {
        return Vec::new();
    }
    let candidates = candidates(text);
    let mut freq: HashMap<&str, u32> = HashMap::new();
    let mut degree: HashMap<&str, u32> = HashMap::new();
    for c in &candidates {
        for w in c {
            *freq.entry(w.as_str()).or_default() += 1;
            *degree.entry(w.as_str()).or_default() += c.len() as u32;
        }
    }
    let word_score = |w: &str| -> f64 {
        let f = freq.get(w).copied().unwrap_or(1).max(1);
        f64::from(degree.get(w).copied().unwrap_or(0)) / f64::from(f)
    };
    // phrase -> (score, first occurrence)
    let mut phrases: HashMap<String, (f64, usize)> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let key = c.join(" ");
        if phrases.contains_key(&key) {
            continue;
        }
        let score = c.iter().map(|w| word_score(w)).sum();
        phrases.insert(key, (score, i));
    }
    let mut ranked: Vec<(String, f64, usize)> = phrases.into_iter().map(|(p, (s, i))| (p, s, i)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    ranked.into_iter().take(k).map(|(p, _, _)| p).collect()
}

/// True for a whitespace-separated chunk that is a URL, an e-mail address or a handle: not
/// words of a phrase.
fn is_address(chunk: &str) -> bool {
    chunk.contains("://") || chunk.contains('@') || chunk.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www."))
}

/// RAKE's candidate phrases, as lists of lowercase words, in text order.
fn candidates(text: &str) -> Vec<Vec<String>> {
    let stop = stopwords();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut phrase: Vec<String> = Vec::new();
    let mut word = String::new();

    let end_phrase = |phrase: &mut Vec<String>, out: &mut Vec<Vec<String>>| {
        if phrase.is_empty() {
            return;
        }
        let words = std::mem::take(phrase);
        if !words.iter().any(|w| w.chars().any(char::is_alphabetic)) {
            return;
        }
        // Split long runs into even pieces of at most MAX_PHRASE_WORDS.
        let n = words.len();
        let pieces = n.div_ceil(MAX_PHRASE_WORDS);
        let (base, extra) = (n / pieces, n % pieces);
        let mut it = words.into_iter();
        for p in 0..pieces {
            let size = base + usize::from(p < extra);
            let piece: Vec<String> = it.by_ref().take(size).collect();
            if piece.iter().any(|w| w.chars().any(char::is_alphabetic)) {
                out.push(piece);
            }
        }
    };
    // Ends the current word: a stopword ends the phrase, any other word joins it.
    let end_word = |word: &mut String, phrase: &mut Vec<String>, out: &mut Vec<Vec<String>>| {
        if word.is_empty() {
            return;
        }
        let mut w = std::mem::take(word);
        // Inner `'`/`-` only: trailing ones are not part of the word.
        while w.ends_with(['\'', '-']) {
            w.pop();
        }
        if let Some(stem) = w.strip_suffix("'s")
            && !stop.contains(w.as_str())
        {
            w.truncate(stem.len());
        }
        if w.is_empty() {
            return;
        }
        if stop.contains(w.as_str()) || !w.chars().any(char::is_alphabetic) {
            end_phrase(phrase, out);
        } else {
            phrase.push(w);
        }
    };

    for chunk in text.split_whitespace() {
        if is_address(chunk) {
            end_phrase(&mut phrase, &mut out);
            continue;
        }
        for c in chunk.chars() {
            let c = match c {
                '\u{2018}' | '\u{2019}' | '\u{02BC}' => '\'',
                '\u{2010}' | '\u{2011}' => '-',
                other => other,
            };
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if (c == '\'' || c == '-') && !word.is_empty() && !word.ends_with(['\'', '-']) {
                // Dropped again at the end of the word unless a letter or digit follows.
                word.push(c);
            } else {
                end_word(&mut word, &mut phrase, &mut out);
                end_phrase(&mut phrase, &mut out);
            }
        }
        end_word(&mut word, &mut phrase, &mut out);
    }
    end_phrase(&mut phrase, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(text: &str) -> Option<&'static str> {
        detect_language(text).map(|s| &*s.leak())
    }

    #[test]
    fn languages_of_sentences() {
        for (text, code) in [
            (
                "The delivery was late but the staff were very friendly and helpful.",
                "en",
            ),
            (
                "Die Lieferung kam leider zu spät, aber der Kundenservice war sehr freundlich.",
                "de",
            ),
            (
                "La livraison était en retard mais le personnel était très aimable.",
                "fr",
            ),
            ("El pedido llegó tarde pero el personal fue muy amable y atento.", "es"),
            (
                "La consegna è arrivata in ritardo ma il personale è stato molto gentile.",
                "it",
            ),
            (
                "A entrega chegou atrasada, mas os funcionários foram muito simpáticos.",
                "pt",
            ),
            (
                "Ik ben erg tevreden over dit product, het werkt precies zoals beschreven.",
                "nl",
            ),
            ("Wij hebben de bestelling nog steeds niet ontvangen.", "nl"),
            ("Доставка опоздала, но персонал был очень вежливым.", "ru"),
            ("配達が遅れましたが、スタッフはとても親切でした。", "ja"),
            ("Dostawa się spóźniła, ale obsługa była bardzo miła.", "pl"),
            ("The product is great", "en"),
        ] {
            assert_eq!(lang(text), Some(code), "{text}");
        }
    }

    /// Where whatlang hesitates (Dutch and Afrikaans, Spanish and Portuguese are close), the
    /// answer is None, never a wrong language.
    #[test]
    fn unsure_means_none_not_wrong() {
        for (text, code) in [
            ("De levering was te laat, maar het personeel was erg vriendelijk.", "nl"),
            ("De bezorging duurde veel te lang en niemand nam de telefoon op.", "nl"),
            ("Het product is kapot aangekomen en ik wil mijn geld terug.", "nl"),
            ("Goede kwaliteit voor een lage prijs, ik zou het zeker aanraden.", "nl"),
            ("O produto chegou quebrado e quero o meu dinheiro de volta.", "pt"),
            ("El producto llegó roto y quiero que me devuelvan el dinero.", "es"),
            ("Il prodotto è arrivato rotto e voglio un rimborso.", "it"),
            ("Das Produkt kam kaputt an und ich möchte mein Geld zurück.", "de"),
            ("Le produit est arrivé cassé et je veux être remboursé.", "fr"),
            ("Great product, fast delivery!", "en"),
        ] {
            let got = lang(text);
            assert!(got.is_none() || got == Some(code), "{text}: {got:?}");
        }
        // Greetings and two-word texts: too short to tell.
        for text in [
            "Danke schön",
            "Hola",
            "bonjour",
            "Merci beaucoup",
            "great product",
            "Sehr gut",
            "lol",
        ] {
            assert_eq!(lang(text), None, "{text}");
        }
    }

    #[test]
    fn no_language_for_short_or_numeric_text() {
        for text in [
            "",
            "   ",
            "ok",
            "12345",
            "12/04/2026 19.99 €",
            "😀😀😀",
            "!!!",
            "a1 b2",
            "$$$ 42",
        ] {
            assert_eq!(lang(text), None, "{text:?}");
        }
    }

    #[test]
    fn every_language_has_a_code() {
        let mut seen = HashSet::new();
        for &l in Lang::all() {
            let code = iso639_1(l).expect("every whatlang language has a 639-1 code");
            assert_eq!(code.len(), 2, "{l:?}");
            assert!(code.bytes().all(|b| b.is_ascii_lowercase()), "{l:?}");
            assert!(seen.insert(code), "{code} twice");
        }
        assert_eq!(seen.len(), Lang::all().len());
    }

    #[test]
    fn long_text_reads_the_head_only() {
        let text = "The staff were friendly and the store was clean. ".repeat(50_000);
        assert_eq!(lang(&text), Some("en"));
        assert_eq!(head("aé", 2), "a");
        assert_eq!(head("aé", 3), "aé");
    }

    #[test]
    fn stopword_list_is_loaded() {
        let s = stopwords();
        assert!(s.len() >= 170, "{}", s.len());
        for w in ["the", "and", "don't", "very", "not", "can"] {
            assert!(s.contains(w), "{w}");
        }
        assert!(
            !s.iter()
                .any(|w| w.starts_with('#') || w.contains(' ') || w.to_lowercase() != *w)
        );
    }

    #[test]
    fn rake_on_a_sample_review() {
        let review = "I bought the Sony WH-1000XM5 headphones last month. The noise cancellation is \
                      outstanding and the sound quality is superb, but the ear cushions get warm \
                      after two hours. Battery life is great: about 30 hours. Customer support \
                      answered quickly. The noise cancellation alone is worth the price!";
        let phrases = key_phrases(review, 6);
        assert_eq!(
            phrases,
            [
                "sony wh-1000xm5 headphones",
                "noise cancellation alone",
                "noise cancellation",
                "last month",
                "sound quality",
                "ear cushions",
            ],
        );
        assert!(
            phrases
                .iter()
                .all(|p| p.split(' ').count() <= MAX_PHRASE_WORDS && *p == p.to_lowercase())
        );
        let all = key_phrases(review, 100);
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "deduplicated");
        // A four-word run is cut in two even pieces.
        assert!(all.contains(&"customer support".to_owned()) && all.contains(&"answered quickly".to_owned()));
        assert!(all.contains(&"battery life".to_owned()) && all.contains(&"superb".to_owned()));
    }

    #[test]
    fn rake_scoring() {
        // deg/freq: "red" 2/1 + "apple" 2/1 ... a longer phrase of unique words wins.
        assert_eq!(
            key_phrases("Fresh red apples and tasty green pears, pears!", 10),
            ["fresh red apples", "tasty green pears", "pears"]
        );
        // Run-on text is cut into even pieces of at most three words.
        assert_eq!(
            key_phrases("great sound quality long battery life amazing comfort", 10),
            ["great sound quality", "long battery life", "amazing comfort"]
        );
    }

    #[test]
    fn rake_edge_cases() {
        assert!(key_phrases("", 5).is_empty());
        assert!(key_phrases("The and of the.", 5).is_empty());
        assert!(key_phrases("anything", 0).is_empty());
        assert!(key_phrases("12 34, 56!", 5).is_empty());
        assert_eq!(
            key_phrases("Apple’s charger isn’t working", 5),
            ["apple charger", "working"]
        );
        assert_eq!(
            key_phrases("Wi-Fi drops -- constantly", 5),
            ["wi-fi drops", "constantly"]
        );
        assert_eq!(key_phrases("GREAT Product great product", 5), ["great product"]);
        assert_eq!(key_phrases("Ünïcödé Straße café", 5), ["ünïcödé straße café"]);
        assert_eq!(
            key_phrases(
                "Mail jo@example.com, see https://shop.example/x or www.example.com now @bob",
                5
            ),
            ["mail", "see", "now"]
        );
        assert_eq!(key_phrases("Lasted 2 days, 30 hours", 5), ["lasted", "days", "hours"]);
    }
}
