#!/usr/bin/env python3
"""Unit tests of the pure parts of the faiss comparison scripts (numpy only;
faiss is not imported):  python3 -m unittest discover -s bench"""
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import faiss_ivfpq as fi  # noqa: E402

STATUS = ("Name:\tpython3\nVmPeak:\t  20000 kB\nVmHWM:\t    9000 kB\nVmRSS:\t    8000 kB\n"
          "RssAnon:\t    5000 kB\nRssFile:\t    2900 kB\nRssShmem:\t     100 kB\nThreads:\t2\n")


class Recall(unittest.TestCase):
    def test_set_definition(self):
        gt = np.array([[5, 6, 7], [1, 2, 3]])
        found = np.array([[6, 5, 9], [3, 8, 1]])
        self.assertEqual(fi.recall_at(found, gt, 1), 0.0)
        self.assertEqual(fi.recall_at(found, gt, 2), 0.5)
        self.assertAlmostEqual(fi.recall_at(found, gt, 3), 4 / 6)
        self.assertIsNone(fi.recall_at(found, gt, 4))

    def test_missing_results_never_match(self):
        gt = np.array([[-1, 2]])
        self.assertEqual(fi.recall_at(np.array([[-1, -1]]), gt, 2), 0.0)
        # Duplicate ids in a result count once.
        self.assertEqual(fi.recall_at(np.array([[2, 2]]), np.array([[2, 4]]), 2), 0.5)

    def test_ties_count_duplicates_of_the_truth(self):
        base = np.array([[0.0], [0.0], [5.0]], dtype=np.float32)
        query = np.array([[0.1]], dtype=np.float32)
        gt = np.array([[0, 1, 2]])
        self.assertEqual(fi.recall_at(np.array([[1]]), gt, 1), 0.0)
        self.assertEqual(fi.tie_aware_recall_at(np.array([[1]]), gt, 1, base, query), 1.0)
        self.assertEqual(fi.tie_aware_recall_at(np.array([[2]]), gt, 1, base, query), 0.0)
        self.assertEqual(fi.tie_aware_recall_at(np.array([[-1]]), gt, 1, base, query), 0.0)


class Rss(unittest.TestCase):
    def test_reads_kilobytes_as_bytes(self):
        self.assertEqual(fi.status_bytes(STATUS, "VmRSS"), 8000 * 1024)
        self.assertEqual(fi.status_bytes(STATUS, "VmHWM"), 9000 * 1024)
        self.assertEqual(fi.status_bytes(STATUS, "RssShmem"), 100 * 1024)

    def test_rejects_missing_and_malformed(self):
        self.assertIsNone(fi.status_bytes(STATUS, "Rss"))  # whole key, not a prefix
        self.assertIsNone(fi.status_bytes(STATUS, "Threads"))  # no unit
        self.assertIsNone(fi.status_bytes("VmRSS:\t12 MB\n", "VmRSS"))
        self.assertIsNone(fi.status_bytes("VmRSS\n", "VmRSS"))

    @unittest.skipUnless(os.path.exists("/proc/self/status"), "needs Linux /proc")
    def test_reads_this_process(self):
        total, anon, file_, peak = fi.read_rss()
        self.assertGreater(total, 0)
        self.assertGreaterEqual(peak, total)
        self.assertLessEqual(anon + file_, total)


class Serve(unittest.TestCase):
    def test_commands(self):
        self.assertEqual(fi.parse_command("batch 1\n"), ("batch", 1))
        self.assertEqual(fi.parse_command(" single\t2 "), ("single", 2))
        self.assertEqual(fi.parse_command("refine 16"), ("refine", 16))
        for bad in ["", "batch", "batch 0", "batch -1", "batch x", "batch 1 2", "flat 1", "end"]:
            with self.assertRaises(ValueError, msg=bad):
                fi.parse_command(bad)


class Compare(unittest.TestCase):
    def test_aggregate_takes_best_timings_and_median_opens(self):
        runs = [
            {"n": 100, "search_batch_qps_t1": 10.0, "train_s": 3.0, "add_s": 2.0, "open_ms_all": [1.0, 9.0],
             "open_ms": 5.0, "recall_at_10": 0.5, "faiss_version": "x"},
            {"n": 100, "search_batch_qps_t1": 12.0, "train_s": 4.0, "add_s": 1.0, "open_ms_all": [2.0],
             "open_ms": 2.0, "recall_at_10": 0.5, "faiss_version": "x"},
        ]
        a = compare.aggregate(runs)
        self.assertEqual(a["search_batch_qps_t1"], 12.0)
        self.assertEqual(a["train_s"], 3.0)
        self.assertEqual(a["add_s"], 1.0)
        self.assertEqual(a["add_vps"], 100.0)
        self.assertEqual(a["open_ms"], 2.0)  # median of all three opens
        self.assertEqual(a["n"], 100)
        self.assertIsInstance(a["n"], int)
        self.assertEqual(a["faiss_version"], "x")

    def test_ratio_reads_chromatica_better_above_one(self):
        self.assertEqual(compare.ratio(20.0, 10.0, True), 2.0)  # q/s: higher is better
        self.assertEqual(compare.ratio(1.0, 4.0, False), 4.0)  # seconds: lower is better
        self.assertIsNone(compare.ratio(None, 4.0, False))
        self.assertIsNone(compare.ratio(0.0, 4.0, False))

    def base_pair(self):
        o = {"search_batch_qps_t1": 200.0, "recall_at_10": 0.50, "search_single_qps_t1": 150.0,
             "single_recall_at_10": 0.50, "refine_qps_t1": 150.0, "refine_recall_at_10": 0.90,
             "train_s": 1.0, "coarse_mse": 1.0, "pq_mse": 1.0, "add_s": 1.0}
        f = {"search_batch_qps_t1": 100.0, "recall_at_10": 0.505, "search_single_qps_t1": 100.0,
             "single_recall_at_10": 0.50, "refine_qps_t1": 100.0, "refine_recall_at_10": 0.90,
             "train_s": 1.0, "coarse_mse": 1.0, "pq_mse": 1.0, "add_s": 2.0}
        return o, f

    def test_verdicts(self):
        o, f = self.base_pair()
        v = compare.verdicts(o, f)
        self.assertTrue(v["search_batch_qps_t1"][0])  # 2× at recall within 0.01
        self.assertFalse(v["search_single_qps_t1"][0])  # 1.5× < 2×
        self.assertTrue(v["refine_qps_t1"][0])
        self.assertTrue(v["train_s"][0])
        self.assertTrue(v["add_vps"][0])
        # Speed without the recall fails; so does training with a worse error.
        o["recall_at_10"] = 0.49
        o["pq_mse"] = 1.03
        o["add_s"] = 2.5
        v = compare.verdicts(o, f)
        self.assertFalse(v["search_batch_qps_t1"][0])
        self.assertIn("recall", v["search_batch_qps_t1"][1])
        self.assertFalse(v["pq_mse"][0])
        self.assertFalse(v["train_s"][0])
        self.assertFalse(v["add_vps"][0])

    def test_table_has_pass_fail_column(self):
        o, f = self.base_pair()
        for side in (o, f):
            side.update(k=100, single_k=10, candidates=200, train_n=20000, search_batch_qps_t2=1.0)
        lines = compare.table(o, f, [1, 2])
        self.assertTrue(lines[0].startswith("| measure | chromatica | faiss | ratio"))
        batch = next(line for line in lines if line.startswith("| search q/s, batched (k=100), 1 thread"))
        self.assertTrue(batch.rstrip().endswith("| PASS |"), batch)
        self.assertIn("| 2.00× |", batch)
        single = next(line for line in lines if line.startswith("| search q/s, one query per call (k=10), 1 thread"))
        self.assertIn("FAIL", single)

    def test_rss_growth_is_over_the_baseline(self):
        rss = [{"baseline_rss": 10, "open_rss": 15, "queries_rss": 20, "open_ms": 1.0, "queries": 1000},
               {"baseline_rss": 12, "open_rss": 15, "queries_rss": 22, "open_ms": 3.0, "queries": 1000}]
        r = compare.with_rss({}, rss)
        self.assertEqual(r["rss_baseline"], 11)
        self.assertEqual(r["rss_open_growth"], 4)
        self.assertEqual(r["rss_queries_growth"], 10)
        self.assertEqual(r["rss_open_ms"], 2.0)


if __name__ == "__main__":
    unittest.main()
