#!/usr/bin/env python3
"""Write a tiny, valid ONNX token-classification (NER) model for crow-nlp's tests.

    python make_tiny_ner.py OUT_DIR --tokenizer models/all-MiniLM-L6-v2/tokenizer.json
        [--max-position-embeddings N] [--token-type-ids]

OUT_DIR receives the Hugging Face layout a real export (e.g. dslim/bert-base-NER) has:

- ``model.onnx``: ``logits[b, s, :] = table[input_ids[b, s], :] * attention_mask[b, s]``: a Gather
  over a [V, L] float32 table (V = the tokenizer's vocabulary size, L = the number of labels),
  masked by the attention mask. Inputs ``input_ids`` and ``attention_mask`` (int64 [batch, seq]),
  plus ``token_type_ids`` with ``--token-type-ids`` (added times zero, so the graph declares and
  uses it); output ``logits`` (float32 [batch, seq, L]).
- ``tokenizer.json``: a copy of the given tokenizer.
- ``config.json``: ``id2label``, ``label2id``, ``max_position_embeddings``.

Every row of the table says "O" (logit 5 against 0), except the rows of the word pieces in
TOKENS below. The model ignores context, so the tests can predict its output exactly: a token's
label is the same in every window. Needs numpy and onnx only.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

# Word piece -> label (with logit 5 against 0 elsewhere: probability ~0.95).
TOKENS = {
    "alice": "B-PER",
    "smith": "I-PER",  # "Smith" alone is an I- without a B-: it starts an entity.
    "bob": "B-PER",
    "ok": "B-PER",  # "Okonkwo" = ok ##on ##k ##wo: the rest of the word follows its first piece.
    "ko": "B-PER",  # "Kowalczyk" = ko ##wal ##cz ##yk ...
    "##wal": "B-LOC",  # ... whose later pieces disagree: the first piece wins.
    "ac": "B-ORG",  # "Acme" = ac ##me.
    "##me": "I-ORG",
    "globe": "B-ORG",  # "Globex" = globe ##x, ##x stays O.
    "paris": "B-LOC",
    "zurich": "B-LOC",  # "Zürich" normalizes to zurich: byte offsets differ from char offsets.
    "york": "I-LOC",
    "[CLS]": "B-MISC",  # special tokens must be skipped whatever the model says of them.
    "[SEP]": "B-MISC",
}
# Word piece -> label with a low probability (logits 1.0 for the label, 0.8 for O: ~0.23).
WEAK = {"nobel": "B-MISC"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--tokenizer", required=True, help="a WordPiece tokenizer.json (the MiniLM one)")
    parser.add_argument("--max-position-embeddings", type=int, default=512)
    parser.add_argument("--token-type-ids", action="store_true", help="declare a token_type_ids input too")
    args = parser.parse_args()

    with open(args.tokenizer, encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    size = max(vocab.values()) + 1
    labels = len(LABELS)

    table = np.zeros((size, labels), dtype=np.float32)
    table[:, 0] = 5.0
    for token, label in TOKENS.items():
        row = table[vocab[token]]
        row[:] = 0.0
        row[LABELS.index(label)] = 5.0
    for token, label in WEAK.items():
        row = table[vocab[token]]
        row[:] = 0.0
        row[0] = 0.8
        row[LABELS.index(label)] = 1.0

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["gathered"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask_3d"]),
    ]
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"),
    ]
    if args.token_type_ids:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"]))
        nodes += [
            helper.make_node("Cast", ["token_type_ids"], ["types_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["types_f", "last_axis"], ["types_3d"]),
            helper.make_node("Mul", ["types_3d", "zero"], ["types_zero"]),
            helper.make_node("Add", ["mask_3d", "types_zero"], ["mask_final"]),
        ]
        initializers.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"))
        mask = "mask_final"
    else:
        mask = "mask_3d"
    nodes.append(helper.make_node("Mul", ["gathered", mask], ["logits"]))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", labels])]

    graph = helper.make_graph(nodes, "tiny_ner", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="crow-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)

    os.makedirs(args.out_dir, exist_ok=True)
    onnx.save(model, os.path.join(args.out_dir, "model.onnx"))
    shutil.copyfile(args.tokenizer, os.path.join(args.out_dir, "tokenizer.json"))
    config = {
        "architectures": ["BertForTokenClassification"],
        "model_type": "bert",
        "id2label": {str(i): label for i, label in enumerate(LABELS)},
        "label2id": {label: i for i, label in enumerate(LABELS)},
        "max_position_embeddings": args.max_position_embeddings,
        "vocab_size": size,
    }
    with open(os.path.join(args.out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
