"""The experiment layer: the ablation grid's rows (``grid``), where a command works (``repository``), one
row's training and evaluation (``run_row``, the DVC stage), MLflow bookkeeping (``tracking``, with ``spool``
for outages), preemption (``preemption``), the SLURM executor (``slurm``, ``job``, ``submit``, ``status``,
``testcluster``) and the paper profile's dress rehearsal (``rehearse``)."""
