"""``awe web``: the DPU queue, job and DPU pages, and a JSON API over the job database.

Reads come straight from the database (any user's jobs, like the Astro-WISE DPU pages);
submission and cancel go through a :class:`awe.dpu.Processor` acting for the token's user,
so the web service keeps exactly the Processor's rules and messages.
"""
