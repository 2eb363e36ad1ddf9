"""Recall@k versus queries per second, one line per engine and mode (run in bench/.venv).

  python plot.py results.json out.svg
"""
import json, sys
import matplotlib
matplotlib.use('Agg')
matplotlib.rcParams['svg.hashsalt'] = 'hannoy-bench'  # stable element ids between runs
import matplotlib.pyplot as plt

STYLE = {  # engine -> (colour, marker); modes of one engine share the colour
    'hannoy-node': ('#d62728', 'o'), 'hannoy-node-int8': ('#ff7f0e', 'v'), 'hannoy-node-binary': ('#8c564b', 'P'),
    'hnswlib': ('#1f77b4', 's'), 'hnswlib-py': ('#17becf', 'X'),
    'usearch': ('#2ca02c', '^'), 'hannoy-py': ('#9467bd', 'D'),
    'lancedb-hnsw-sq': ('#e377c2', 'h'), 'lancedb-ivf-pq': ('#7f7f7f', '*'),
}
DASH = {'single': '-', 'batch': ':', 'batch1': '-.'}  # in-flight modes: '--'


def main(src, out):
    res = json.load(open(src))
    ds, p, m = res['dataset'], res['params'], res['machine']
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    lines = 0
    for name, e in res['engines'].items():
        if e.get('status') != 'ok':
            continue
        colour, marker = STYLE.get(name, ('#555555', 'x'))
        for mode in e['search']['modes']:
            pts = [pt for pt in mode['points'] if pt.get('recall') is not None and pt.get('qps')]
            if not pts:
                continue
            dash = DASH.get(mode['mode'], '--')
            ax.plot([pt['recall'] for pt in pts], [pt['qps'] for pt in pts], dash, color=colour, marker=marker,
                    markersize=4.5, linewidth=1.6, label=f"{mode['label']} [{mode.get('threads', 1)} thr]")
            lines += 1
            knob = mode.get('knob', 'ef')  # LanceDB's IVF_PQ sweeps nprobes instead of ef
            for pt in (pts[0], pts[-1]):
                ax.annotate(f"{knob} {pt.get(knob)}", (pt['recall'], pt['qps']), textcoords='offset points',
                            xytext=(4, 3), fontsize=6.5, color=colour)
    ax.set_yscale('log')
    ax.set_xlabel(f"recall@{ds['k']}")
    ax.set_ylabel('queries per second (log scale)')
    ax.axvline(0.95, color='#999999', linewidth=0.8, linestyle='--')
    ax.grid(True, which='both', linewidth=0.4, alpha=0.5)
    ax.set_title(f"{ds['name']}: {ds['n']:,} × {ds['dim']}-d, {ds['metric']}, {ds['nq']:,} queries, "
                 f"M={p['m']}, efConstruction={p['efConstruction']}\n"
                 f"{m['cores']} cores, {m['cpuModel']}, Node {m['node']}, {m['date'][:10]}", fontsize=9)
    if lines:
        ax.legend(fontsize=6.5 if lines > 12 else 7.5, loc='lower left')
    fig.tight_layout()
    fig.savefig(out, format='svg', metadata={'Date': None})
    print(f'wrote {out}')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
