"""Rebuild the bundled MedQuAD sample (data/samples/medquad_sample) from ../shared/datasets/medquad.

Deterministic: 120 dev questions (seed 13), their judged answers, and answers about the same
foci from other questions as hard distractors, up to 360 answers in all.
"""

import json
import random
import sys
from pathlib import Path

source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/medquad")
target = Path(sys.argv[2] if len(sys.argv) > 2 else "data/samples/medquad_sample")
corpus = {d["_id"]: d for d in map(json.loads, (source / "corpus.jsonl").open())}
queries = {q["_id"]: q for q in map(json.loads, (source / "queries.jsonl").open())}
rows = [line.rstrip("\n").split("\t") for line in (source / "qrels/dev.tsv").open()][1:]
rows = [r for r in rows if r[1] in corpus]
rng = random.Random(13)
picked = sorted(rng.sample(rows, 120))
doc_ids = {r[1] for r in picked}
foci = {corpus[d]["title"] for d in doc_ids}
distractors = sorted(d for d, doc in corpus.items() if doc["title"] in foci and d not in doc_ids)
rng.shuffle(distractors)
doc_ids |= set(distractors[: 360 - len(doc_ids)])
target.mkdir(parents=True, exist_ok=True)
(target / "qrels").mkdir(exist_ok=True)
with (target / "corpus.jsonl").open("w") as out:
    for d in sorted(doc_ids):
        out.write(json.dumps(corpus[d], ensure_ascii=False, sort_keys=True) + "\n")
with (target / "queries.jsonl").open("w") as out:
    for r in picked:
        out.write(json.dumps(queries[r[0]], ensure_ascii=False, sort_keys=True) + "\n")
with (target / "qrels/dev.tsv").open("w") as out:
    out.write("query-id\tcorpus-id\tscore\n")
    for r in picked:
        out.write("\t".join(r) + "\n")
print(f"{len(doc_ids)} answers, {len(picked)} queries -> {target}")
