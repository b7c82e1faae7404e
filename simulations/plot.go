package simulations

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// maxNodeLines is the largest mesh plotted with one line per node; larger
// meshes get min, median and max lines, which stay readable.
const maxNodeLines = 20

// WriteOutputs writes the time series and plots of res into dir:
// series.csv, converged.png (fraction of nodes converged over time) and
// bytes.png (bytes sent per node over time). Fault times are marked on the
// converged plot as dashed lines; the title names the run.
func WriteOutputs(dir string, res *Result) error {
	if res.Series == nil {
		return fmt.Errorf("simulations: no series to write")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "series.csv"))
	if err != nil {
		return err
	}
	if err := res.Series.WriteCSV(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	title := fmt.Sprintf("%s, %d nodes, seed %d", res.Scenario, res.Nodes, res.Seed)
	if err := plotConverged(filepath.Join(dir, "converged.png"), title, res.Series); err != nil {
		return err
	}
	return plotBytes(filepath.Join(dir, "bytes.png"), title, res.Series)
}

func plotConverged(path, title string, s *Series) error {
	p := plot.New()
	p.Title.Text = "Nodes converged: " + title
	p.X.Label.Text = "time since workload start (s)"
	p.Y.Label.Text = "fraction of nodes holding the common roots"
	p.Y.Min, p.Y.Max = 0, 1.05
	xys := make(plotter.XYs, len(s.Samples))
	for i, smp := range s.Samples {
		xys[i] = plotter.XY{X: smp.T.Seconds(), Y: smp.Converged()}
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(0)
	l.Width = vg.Points(1.5)
	p.Add(l, plotter.NewGrid())
	p.Legend.Add("converged", l)
	// One dashed vertical line per fault, so the dips and the recovery
	// can be read against what caused them.
	for i, f := range s.Faults {
		x := f.T.Seconds()
		m, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: 1.05}})
		if err != nil {
			return err
		}
		m.Color = plotutil.Color(1 + i%6)
		m.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(m)
		p.Legend.Add(fmt.Sprintf("%s at %.2fs", f.Label, x), m)
	}
	p.Legend.Left = true
	p.Legend.Top = false
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

func plotBytes(path, title string, s *Series) error {
	p := plot.New()
	p.Title.Text = "Bytes sent per node: " + title
	p.X.Label.Text = "time since workload start (s)"
	p.Y.Label.Text = "cumulative bytes sent (KiB)"
	p.Add(plotter.NewGrid())
	if len(s.Samples) == 0 {
		return p.Save(8*vg.Inch, 4*vg.Inch, path)
	}
	n := len(s.Samples[0].Nodes)
	kib := func(b uint64) float64 { return float64(b) / 1024 }
	if n <= maxNodeLines {
		for node := range n {
			xys := make(plotter.XYs, len(s.Samples))
			for i, smp := range s.Samples {
				xys[i] = plotter.XY{X: smp.T.Seconds(), Y: kib(smp.Nodes[node].Bytes)}
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(node)
			p.Add(l)
			p.Legend.Add(fmt.Sprintf("node %d", node), l)
		}
	} else {
		names := []string{"min", "median", "max"}
		lines := make([]plotter.XYs, 3)
		for i := range lines {
			lines[i] = make(plotter.XYs, len(s.Samples))
		}
		vals := make([]float64, n)
		for i, smp := range s.Samples {
			for j, ns := range smp.Nodes {
				vals[j] = kib(ns.Bytes)
			}
			slices.Sort(vals)
			for k, v := range []float64{vals[0], vals[n/2], vals[n-1]} {
				lines[k][i] = plotter.XY{X: smp.T.Seconds(), Y: v}
			}
		}
		for k, xys := range lines {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(k)
			p.Add(l)
			p.Legend.Add(names[k]+" over nodes", l)
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}
