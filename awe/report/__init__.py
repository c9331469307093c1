"""One job as a page: its facts gathered from the database (:mod:`awe.report.view`), image
previews of its products (:mod:`awe.report.preview`) and the HTML both the web service and
the static report show (:mod:`awe.report.render`).

It reads only the job database and the data store, so ``dpu.report(jobid, 'job.html')``
and ``awe web`` show the same page without sharing a server.
"""

from awe.report.render import write_report

__all__ = ["write_report"]
