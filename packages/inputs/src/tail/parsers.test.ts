import { createParser, timeReader } from './parsers';

test('nginx combined: fields, integer code and size, the time as the event time', () => {
  const parse = createParser({ type: 'nginx' });
  const line =
    '93.184.216.34 - alice [10/Oct/2025:13:55:36 +0200] "GET /api/v1/items?page=2 HTTP/1.1" 200 5123 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"';
  const parsed = parse(line);
  expect(parsed?.record).toEqual({
    remote: '93.184.216.34',
    host: '-',
    user: 'alice',
    method: 'GET',
    path: '/api/v1/items?page=2',
    code: 200,
    size: 5123,
    referer: 'https://example.com/',
    agent: 'Mozilla/5.0 (X11; Linux x86_64)',
  });
  expect(parsed?.time?.seconds).toBe(Date.UTC(2025, 9, 10, 11, 55, 36) / 1000);
});

test('apache2 combined', () => {
  const parsed = createParser({ type: 'apache2' })(
    '192.168.0.1 - - [28/Feb/2024:10:00:00 +0000] "POST /login HTTP/1.0" 302 - "-" "curl/8.5.0"',
  );
  expect(parsed?.record).toMatchObject({
    host: '192.168.0.1',
    user: '-',
    method: 'POST',
    path: '/login',
    code: 302,
    size: '-',
    agent: 'curl/8.5.0',
  });
  expect(parsed?.time?.seconds).toBe(Date.UTC(2024, 1, 28, 10) / 1000);
});

test('syslog RFC 3164 (with and without <pri>) and RFC 5424', () => {
  const year = new Date().getUTCFullYear();
  const bsd = createParser({ type: 'syslog_rfc3164' });
  expect(bsd("<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8")).toEqual({
    record: { pri: 34, host: 'mymachine', ident: 'su', pid: '123', message: "'su root' failed for lonvick on /dev/pts/8" },
    time: expect.objectContaining({ seconds: Date.UTC(year, 9, 11, 22, 14, 15) / 1000 }),
  });
  expect(bsd('Mar  3 07:01:02 web-1 systemd: Started Session 42.')?.record).toEqual({
    host: 'web-1',
    ident: 'systemd',
    message: 'Started Session 42.',
  });
  const ietf = createParser({ type: 'syslog_rfc5424' })(
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event',
  );
  expect(ietf?.record).toEqual({
    pri: 165,
    host: 'mymachine.example.com',
    ident: 'evntslog',
    pid: '-',
    msgid: 'ID47',
    extradata: '[exampleSDID@32473 iut="3"]',
    message: 'An application event',
  });
  expect(ietf?.time).toEqual(expect.objectContaining({ seconds: Date.UTC(2003, 9, 11, 22, 14, 15) / 1000, nanoseconds: 3_000_000 }));
});

test('json and regex with time_key/time_format; a line that does not parse gives null', () => {
  const json = createParser({ type: 'json', time_key: 'ts', time_format: 'unix_ms' });
  expect(json('{"level":"info","ts":1700000000123}')).toEqual({
    record: { level: 'info' },
    time: expect.objectContaining({ seconds: 1700000000, nanoseconds: 123_000_000 }),
  });
  expect(json('not json')).toBeNull();
  expect(json('[1,2]')).toBeNull();
  const regex = createParser({
    type: 'regex',
    expression: '^(?<when>\\S+ \\S+) (?<level>[A-Z]+) (?<msg>.*)$',
    time_key: 'when',
    time_format: '%Y-%m-%d %H:%M:%S.%L',
    keep_time_key: true,
  });
  expect(regex('2024-05-06 07:08:09.123 WARN disk almost full')).toEqual({
    record: { when: '2024-05-06 07:08:09.123', level: 'WARN', msg: 'disk almost full' },
    time: expect.objectContaining({ seconds: Date.UTC(2024, 4, 6, 7, 8, 9) / 1000, nanoseconds: 123_000_000 }),
  });
  expect(regex('no match here')).toBeNull();
  expect(createParser({ type: 'none' })('as is')).toEqual({ record: { message: 'as is' } });
});

test('time formats', () => {
  expect(timeReader('iso8601')('2024-01-02T03:04:05.123456789Z')).toEqual(
    expect.objectContaining({ seconds: 1704164645, nanoseconds: 123456789 }),
  );
  expect(timeReader('unix')('1700000000.5')).toEqual(expect.objectContaining({ seconds: 1700000000, nanoseconds: 500_000_000 }));
  expect(timeReader('%d/%b/%Y:%H:%M:%S %z')('01/Jan/2024:00:00:00 -0130')?.seconds).toBe(Date.UTC(2024, 0, 1, 1, 30) / 1000);
  expect(timeReader('%d/%b/%Y:%H:%M:%S %z')('garbage')).toBeNull();
  expect(() => timeReader('%Q')).toThrow('%Q is not supported');
});
