"""The pure part of inprocess.py: the table and its PASS/FAIL verdicts
(needs neither chromatica nor faiss)."""

import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inprocess  # noqa: E402


def figures(**over):
    r = {"n": 100000, "queries": 1000, "d": 1152, "cores": 2, "faiss": "1.x", "chromatica": "0.1.0",
         "c_train_s": 1.0, "f_train_s": 4.0, "c_add_s": 0.5, "f_add_s": 2.0, "c_add_refine_s": 0.8,
         "c_rss_mib": 80.0, "f_rss_mib": 450.0,
         "c_recall1": 0.23, "f_recall1": 0.24, "c_recall10": 0.486, "f_recall10": 0.485,
         "c_recall100": 0.72, "f_recall100": 0.72, "c_single_recall10": 0.486, "f_single_recall10": 0.485,
         "c_refine_recall10": 0.917, "f_refine_recall10": 0.92}
    for t in (1, 2):
        r.update({f"c_batch_qps_t{t}": 24000.0, f"f_batch_qps_t{t}": 10000.0,
                  f"c_refine_qps_t{t}": 5400.0, f"f_refine_qps_t{t}": 3000.0})
    r.update({"c_single_qps_t1": 20000.0, "f_single_qps_t1": 8000.0})
    r.update(over)
    return r


ARGS = argparse.Namespace(nlist=100, m=8, nbits=8, nprobe=10, train_n=20000, k=100, single_k=10,
                          candidates=200, repeat=9)


def verdicts(text):
    return [line.rsplit("|", 2)[-2].strip() for line in text.splitlines() if line.startswith("| search q/s, batched (k=100), 1") or line.startswith("| two-stage q/s") and "1 thread" in line]


class TableTest(unittest.TestCase):
    def test_targets_pass(self):
        text = inprocess.table(figures(), ARGS, [1, 2])
        self.assertEqual(verdicts(text), ["PASS", "PASS"])
        self.assertIn("| 2.40× |", text)
        self.assertIn("| train time (s), 1 thread | 1.0000 | 4.0000 | 4.00× |", text)

    def test_lower_recall_or_speed_fails(self):
        text = inprocess.table(figures(c_recall10=0.47, c_refine_qps_t1=4000.0), ARGS, [1, 2])
        self.assertEqual(verdicts(text), ["FAIL", "FAIL"])

    def test_one_core_has_no_all_threads_rows(self):
        text = inprocess.table(figures(), ARGS, [1])
        self.assertNotIn("2 threads", text)


if __name__ == "__main__":
    unittest.main()
