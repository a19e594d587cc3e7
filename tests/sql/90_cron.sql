-- Cron expressions: dbos.cron_field (one field as the values it allows) and
-- dbos.cron_next (the first matching minute after a time, in a time zone).
-- Five fields (minute hour day-of-month month day-of-week) with *, n, a-b,
-- steps, lists and names (jan..dec, sun..sat; 0 and 7 are Sunday), or a
-- macro. When both day fields are restricted, either may match. Bad
-- expressions and time zones raise 22023. 2024-01-01 is a Monday.

begin;
select plan(60);

-- cron_field
select is(
  cardinality(dbos.cron_field('*', 0, 59, 'minute')), 60,
  'cron_field * allows every value from low to high'
);
select is(dbos.cron_field('5', 0, 59, 'minute'), array[5], 'cron_field n allows n');
select is(dbos.cron_field('1-3', 0, 59, 'minute'), array[1, 2, 3], 'cron_field a-b allows a range');
select is(dbos.cron_field('*/15', 0, 59, 'minute'), array[0, 15, 30, 45], 'cron_field */s steps from low');
select is(dbos.cron_field('10-30/10', 0, 59, 'minute'), array[10, 20, 30], 'cron_field a-b/s steps through a range');
select is(dbos.cron_field('5/20', 0, 59, 'minute'), array[5, 25, 45], 'cron_field n/s steps from n to high');
select is(dbos.cron_field('7,1,3', 0, 59, 'minute'), array[1, 3, 7], 'cron_field lists are allowed and sorted');
select is(dbos.cron_field('1-3,2,3-4', 0, 59, 'minute'), array[1, 2, 3, 4], 'cron_field drops duplicates of a list');
select is(
  dbos.cron_field('jan-mar,DEC', 1, 12, 'month', array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']),
  array[1, 2, 3, 12],
  'cron_field reads names, in any case, as their numbers (names[1] is low)'
);
select throws_ok(
  $$ select dbos.cron_field('60', 0, 59, 'minute') $$, '22023', null,
  'cron_field refuses a value above high with 22023'
);
select throws_ok(
  $$ select dbos.cron_field('*/0', 0, 59, 'minute') $$, '22023', null,
  'cron_field refuses a step of 0 with 22023'
);
select throws_ok(
  $$ select dbos.cron_field('5-1', 0, 59, 'minute') $$, '22023', null,
  'cron_field refuses a reversed range with 22023'
);
select throws_ok(
  $$ select dbos.cron_field('x', 0, 59, 'minute') $$, '22023', null,
  'cron_field refuses text that is not a cron field with 22023'
);

-- cron_next: minutes and hours.
select is(
  dbos.cron_next('* * * * *', '2024-01-01 00:00:00+00'),
  '2024-01-01 00:01:00+00'::timestamptz,
  'cron_next is strictly after `after`: every minute from 00:00 is 00:01'
);
select is(
  dbos.cron_next('* * * * *', '2024-01-01 00:00:30+00'),
  '2024-01-01 00:01:00+00'::timestamptz,
  'cron_next returns whole minutes'
);
select is(
  dbos.cron_next('30 * * * *', '2024-01-01 00:00+00'),
  '2024-01-01 00:30+00'::timestamptz,
  'minute 30: the next half past'
);
select is(
  dbos.cron_next('30 * * * *', '2024-01-01 00:30+00'),
  '2024-01-01 01:30+00'::timestamptz,
  'minute 30 at half past: the next hour''s half past'
);
select is(
  dbos.cron_next('0 9 * * *', '2024-01-01 10:00+00'),
  '2024-01-02 09:00+00'::timestamptz,
  '09:00 daily, after 10:00: tomorrow at 09:00'
);
select is(
  dbos.cron_next('*/20 8-9 * * *', '2024-01-01 09:45+00'),
  '2024-01-02 08:00+00'::timestamptz,
  'every 20 minutes of hours 8-9, after 09:45: the next day at 08:00'
);
select results_eq(
  $$
    with recursive ticks (n, t) as (
      select 1, dbos.cron_next('15,45 */6 * * *', '2024-01-01 00:00+00')
      union all
      select n + 1, dbos.cron_next('15,45 */6 * * *', t) from ticks where n < 5
    )
    select t from ticks order by n
  $$,
  $$
    values ('2024-01-01 00:15+00'::timestamptz), ('2024-01-01 00:45+00'),
      ('2024-01-01 06:15+00'), ('2024-01-01 06:45+00'), ('2024-01-01 12:15+00')
  $$,
  'chained cron_next walks the ticks of 15,45 */6 in order'
);

-- Days, months, weekdays.
select is(
  dbos.cron_next('0 0 1 * *', '2024-01-15 00:00+00'),
  '2024-02-01 00:00+00'::timestamptz,
  'day-of-month 1: the first of next month'
);
select is(
  dbos.cron_next('0 0 31 * *', '2024-01-31 00:00+00'),
  '2024-03-31 00:00+00'::timestamptz,
  'day 31 skips months without a 31st'
);
select is(
  dbos.cron_next('0 0 29 2 *', '2024-03-01 00:00+00'),
  '2028-02-29 00:00+00'::timestamptz,
  'February 29th: the next leap year'
);
select is(
  dbos.cron_next('0 12 * 6 *', '2024-01-01 00:00+00'),
  '2024-06-01 12:00+00'::timestamptz,
  'month 6: noon on the first day of June'
);
select is(
  dbos.cron_next('0 0 1 jun *', '2024-01-01 00:00+00'),
  '2024-06-01 00:00+00'::timestamptz,
  'month names: jun is 6'
);
select is(
  dbos.cron_next('0 9 * * mon-fri', '2024-01-05 10:00+00'),
  '2024-01-08 09:00+00'::timestamptz,
  'weekdays mon-fri: after Friday 10:00 comes Monday 09:00'
);
select is(
  dbos.cron_next('0 0 * * 0', '2024-01-01 00:00+00'),
  '2024-01-07 00:00+00'::timestamptz,
  'day-of-week 0 is Sunday'
);
select is(
  dbos.cron_next('0 0 * * 7', '2024-01-01 00:00+00'),
  '2024-01-07 00:00+00'::timestamptz,
  'day-of-week 7 is Sunday too'
);
select is(
  dbos.cron_next('0 0 * * SUN', '2024-01-01 00:00+00'),
  '2024-01-07 00:00+00'::timestamptz,
  'day names, in any case: sun is Sunday'
);
select is(
  dbos.cron_next('0 0 * * 5-7', '2024-01-06 00:00+00'),
  '2024-01-07 00:00+00'::timestamptz,
  'the range 5-7 (Friday to Sunday) ends on Sunday, 7'
);
select is(
  dbos.cron_next('0 0 15 * *', '2024-01-01 00:00+00'),
  '2024-01-15 00:00+00'::timestamptz,
  'a restricted day-of-month with day-of-week * matches only that day'
);
select is(
  dbos.cron_next('0 0 * * wed', '2024-01-01 00:00+00'),
  '2024-01-03 00:00+00'::timestamptz,
  'a restricted day-of-week with day-of-month * matches only that weekday'
);

-- Both day fields restricted: either matches.
select is(
  dbos.cron_next('0 0 13 * fri', '2024-01-01 00:00+00'),
  '2024-01-05 00:00+00'::timestamptz,
  '13 * fri: a Friday that is not the 13th matches'
);
select is(
  dbos.cron_next('0 0 13 * fri', '2024-01-12 00:00+00'),
  '2024-01-13 00:00+00'::timestamptz,
  '13 * fri: the 13th that is not a Friday matches'
);

-- Steps in the day fields restrict them.
select is(
  dbos.cron_next('0 0 */2 * *', '2024-01-01 00:00+00'),
  '2024-01-03 00:00+00'::timestamptz,
  'day-of-month */2 runs on odd days: after the 1st comes the 3rd, not the 2nd'
);
select is(
  dbos.cron_next('0 0 * * */2', '2024-01-02 00:00+00'),
  '2024-01-04 00:00+00'::timestamptz,
  'day-of-week */2 runs on Sun, Tue, Thu, Sat: after Tuesday comes Thursday, not Wednesday'
);

-- Macros.
select is(dbos.cron_next('@hourly', '2024-01-01 00:10+00'), '2024-01-01 01:00+00'::timestamptz, '@hourly: the next full hour');
select is(dbos.cron_next('@daily', '2024-01-01 00:10+00'), '2024-01-02 00:00+00'::timestamptz, '@daily: the next midnight');
select is(dbos.cron_next('@midnight', '2024-01-01 00:10+00'), '2024-01-02 00:00+00'::timestamptz, '@midnight: the next midnight');
select is(dbos.cron_next('@weekly', '2024-01-01 00:10+00'), '2024-01-07 00:00+00'::timestamptz, '@weekly: the next Sunday midnight');
select is(dbos.cron_next('@monthly', '2024-01-01 00:10+00'), '2024-02-01 00:00+00'::timestamptz, '@monthly: midnight of the next first of a month');
select is(dbos.cron_next('@yearly', '2024-01-01 00:10+00'), '2025-01-01 00:00+00'::timestamptz, '@yearly: midnight of the next January 1st');
select is(dbos.cron_next('@annually', '2024-01-01 00:10+00'), '2025-01-01 00:00+00'::timestamptz, '@annually is @yearly');
select is(
  dbos.cron_next('  @DAILY ', '2024-01-01 00:10+00'),
  '2024-01-02 00:00+00'::timestamptz,
  'macros are read in any case, surrounding spaces ignored'
);

-- Time zones.
select is(
  dbos.cron_next('0 9 * * *', '2024-01-01 12:00+00', 'America/New_York'),
  '2024-01-01 14:00+00'::timestamptz,
  '09:00 in New York in winter is 14:00 UTC'
);
select is(
  dbos.cron_next('0 9 * * *', '2024-07-01 12:00+00', 'America/New_York'),
  '2024-07-01 13:00+00'::timestamptz,
  '09:00 in New York in summer is 13:00 UTC'
);
select is(
  dbos.cron_next('0 0 * * *', '2024-01-01 00:00+00', 'Asia/Kolkata'),
  '2024-01-01 18:30+00'::timestamptz,
  'midnight in Kolkata (+05:30) is 18:30 UTC'
);
select is(
  dbos.cron_next('0 0 * * mon', '2024-01-07 12:00+00', 'Asia/Tokyo'),
  '2024-01-07 15:00+00'::timestamptz,
  'the weekday is read in the time zone: Monday midnight in Tokyo is Sunday 15:00 UTC'
);

-- Bad expressions and time zones raise 22023.
select throws_ok($$ select dbos.cron_next('* * * *', now()) $$, '22023', null, 'cron_next refuses 4 fields with 22023');
select throws_ok($$ select dbos.cron_next('* * * * * *', now()) $$, '22023', null, 'cron_next refuses 6 fields with 22023');
select throws_ok($$ select dbos.cron_next('', now()) $$, '22023', null, 'cron_next refuses an empty expression with 22023');
select throws_ok($$ select dbos.cron_next('@reboot', now()) $$, '22023', null, 'cron_next refuses an unknown macro with 22023');
select throws_ok($$ select dbos.cron_next('60 * * * *', now()) $$, '22023', null, 'cron_next refuses minute 60 with 22023');
select throws_ok($$ select dbos.cron_next('* 24 * * *', now()) $$, '22023', null, 'cron_next refuses hour 24 with 22023');
select throws_ok($$ select dbos.cron_next('* * 0 * *', now()) $$, '22023', null, 'cron_next refuses day-of-month 0 with 22023');
select throws_ok($$ select dbos.cron_next('* * * 13 *', now()) $$, '22023', null, 'cron_next refuses month 13 with 22023');
select throws_ok($$ select dbos.cron_next('* * * * 8', now()) $$, '22023', null, 'cron_next refuses day-of-week 8 with 22023');
select throws_ok($$ select dbos.cron_next('* * * mon *', now()) $$, '22023', null, 'cron_next refuses a day name in the month field with 22023');
select throws_ok($$ select dbos.cron_next('0 0 30 2 *', now()) $$, '22023', null, 'cron_next refuses an expression that never matches (February 30th) with 22023');
select throws_ok(
  $$ select dbos.cron_next('* * * * *', now(), 'Mars/Olympus_Mons') $$, '22023', null,
  'cron_next refuses an unknown time zone with 22023'
);

select * from finish();
rollback;
