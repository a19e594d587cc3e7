-- One job enqueued: a single-row insert, one transaction.
insert into bench_jobs (job_name, payload) values ('noop', '{}');
