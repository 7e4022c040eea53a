"""Generate notebooks/07_report.ipynb."""

from write_notebook import write_notebook

write_notebook(
    "notebooks/07_report.ipynb",
    [
        (
            "md",
            """
# 07 — The results table

Gathers the `metrics.csv` of every evaluated run of the profile (notebook 04) into the paper's results table
(Markdown, CSV, LaTeX), draws the summary figure, and checks the paper's mechanism on every dataset: **geom** leaves
less geometric distortion than **baseline** with a higher FRR; **geom+rad** keeps the input radiometry better than
**geom**; bicubic is the floor.
""",
        ),
        ("code", 'params_file = "../params/smoke/07_report.yaml"'),
        (
            "code",
            """
from IPython.display import Image, Markdown, display

from sisrlib import report
from sisrlib.pipeline import notebook_params

params = notebook_params(params_file)
params
""",
        ),
        (
            "code",
            """
table = report.gather(report.find_metrics_files(params.metrics_files))
headline = report.headline_table(table)
paths = report.write_tables(headline, params.figures_dir, params.table_name)
report.write_tables(table.drop(columns="source"), params.figures_dir, params.table_name + "_full")
display(Markdown(report.to_markdown(headline)))
""",
        ),
        (
            "code",
            """
checks = report.mechanism_frame(report.check_mechanism(table))
report.write_tables(checks, params.figures_dir, params.table_name + "_mechanism")
display(Markdown(report.to_markdown(checks)))
if params.require_mechanism and not checks["holds"].all():
    raise AssertionError("the paper's mechanism does not hold on every dataset: see the table above")
""",
        ),
        (
            "code",
            """
display(Image(filename=str(report.plot_summary(table, params.figures_dir, params.table_name))))
""",
        ),
    ],
)
