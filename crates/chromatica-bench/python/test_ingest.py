"""The pure parts of ingest.py: the reproduced soft histogram and the
table's ratios and verdicts (numpy only: no image library is imported)."""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest  # noqa: E402


class SoftHistogram(unittest.TestCase):
    def test_a_colour_on_a_bin_node_fills_that_bin_and_between_nodes_splits(self):
        # L 50 is node 4 of 8 on [0, 100]; a = -86 and b = -108 are node 0.
        h = ingest.soft_hist(np.array([[50.0, -86.0, -108.0]]))
        self.assertEqual(h.shape, (1152,))
        self.assertAlmostEqual(float(h[4 * 144]), 1.0, places=6)
        # Halfway between L nodes 4 and 5: half in each.
        h = ingest.soft_hist(np.array([[56.25, -86.0, -108.0]]))
        self.assertAlmostEqual(float(h[4 * 144]), 0.5, places=6)
        self.assertAlmostEqual(float(h[5 * 144]), 0.5, places=6)

    def test_out_of_range_values_are_clamped_and_mass_sums_to_one(self):
        lab = np.array([[-5.0, 500.0, -500.0], [100.0, 98.0, 95.0], [30.0, 10.0, -20.0]])
        h = ingest.soft_hist(lab)
        self.assertTrue((h >= 0).all())
        self.assertAlmostEqual(float(h.sum()), 1.0, places=6)


class Report(unittest.TestCase):
    def rows(self, jpeg_ratio, png_ratio):
        row = lambda kind, ours, theirs: {"kind": kind, "pixels": 4_000_000, "chromatica_s": ours,
                                          "original_s": theirs, "l1": 0.01}
        return [row("jpeg", 0.1, 0.1 * jpeg_ratio), row("jpeg", 0.2, 0.2 * jpeg_ratio),
                row("png", 0.1, 0.1 * png_ratio)]

    def test_ratios_are_summed_times_and_verdicts_follow_the_targets(self):
        lines = ingest.report(self.rows(3.0, 1.0), "t")
        text = "\n".join(lines)
        self.assertIn("| JPEG | 2 | 4.0 | 6.7 | 2.2 | 3.00× |", text)
        self.assertIn("| PNG | 1 | 4.0 | 10.0 | 10.0 | 1.00× |", text)
        # All: 0.4 s against 1.0 s.
        self.assertIn("| all | 3 | 4.0 | 7.5 | 3.0 | 2.50× |", text)
        self.assertIn("| JPEG: ≥ 2.5× the original's pipeline per core | 3.00× | PASS |", text)
        self.assertIn("| all: ≥ 2.0× the original's pipeline per core | 2.50× | PASS |", text)
        # All: 0.4 s against 0.7 s.
        lines = ingest.report(self.rows(2.0, 1.0), "t")
        self.assertIn("| JPEG: ≥ 2.5× the original's pipeline per core | 2.00× | FAIL |", lines)
        self.assertIn("| all: ≥ 2.0× the original's pipeline per core | 1.75× | FAIL |", lines)

    def test_a_missing_kind_has_no_row(self):
        lines = ingest.report([r for r in self.rows(3.0, 1.0) if r["kind"] == "png"], "t")
        self.assertFalse(any(line.startswith("| JPEG") for line in lines))
        self.assertIn("| PNG | 1 | 4.0 | 10.0 | 10.0 | 1.00× | 0.010 (0.010) |", lines)


if __name__ == "__main__":
    unittest.main()
