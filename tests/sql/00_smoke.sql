begin;
select plan(1);
select has_schema('dbos', 'schema dbos exists');
select * from finish();
rollback;
