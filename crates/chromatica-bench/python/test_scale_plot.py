"""scale_plot.py: the axis mapping and the SVG it draws from bench-scale runs."""

import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale_plot  # noqa: E402


def run(n, recall, qps, bpv):
    return {"n": n, "recall_at_10": recall, "search_single_qps_t1": qps, "disk_bytes_per_vector": bpv,
            "stage1_recall_at_10": recall / 2, "stage1_search_single_qps_t1": qps * 2}


class Plot(unittest.TestCase):
    def test_scale_maps_ends_and_a_flat_range_to_the_middle(self):
        self.assertEqual(scale_plot.scale(5, 0, 10, 100, 200), 150)
        self.assertEqual(scale_plot.scale(0, 0, 10, 100, 200), 100)
        self.assertEqual(scale_plot.scale(3, 3, 3, 100, 200), 150)

    def test_one_point_per_run_in_order_of_n_with_labels(self):
        runs = [run(10_000_000, 0.8, 900, 283), run(100_000, 0.95, 5000, 290), run(1_000_000, 0.9, 3000, 285)]
        root = ET.fromstring(scale_plot.svg(runs, "cap"))
        ns = "{http://www.w3.org/2000/svg}"
        lines = root.findall(f"{ns}polyline")
        self.assertEqual(len(lines), 5)  # two series in two panels, one in the third
        for line in lines:
            xs = [float(p.split(",")[0]) for p in line.get("points").split()]
            self.assertEqual(len(xs), 3)
            self.assertEqual(xs, sorted(xs))
        texts = [t.text for t in root.findall(f"{ns}text")]
        for label in ["100k", "1M", "10M", "0.95", "0.80", "0.47", "5,000", "10,000", "900", "290", "cap"]:
            self.assertIn(label, texts)
        # Higher recall is drawn higher (smaller y) in the first panel.
        ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
        self.assertLess(ys[0], ys[2])

    def test_a_run_without_a_figure_leaves_it_out(self):
        r = run(1_000_000, 0.9, 3000, 285)
        del r["recall_at_10"]  # two-stage recall at 1M
        root = ET.fromstring(scale_plot.svg([run(100_000, 0.95, 5000, 290), r], "c"))
        first = root.findall("{http://www.w3.org/2000/svg}polyline")[0]
        self.assertEqual(len(first.get("points").split()), 1)


if __name__ == "__main__":
    unittest.main()
