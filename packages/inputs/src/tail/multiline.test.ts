import { type Group, createGrouper } from './multiline';

function feed(mode: Parameters<typeof createGrouper>[0], lines: string[], firstLine?: string, maxBytes = 1 << 20) {
  const g = createGrouper(mode, firstLine, maxBytes);
  if (!g) throw new Error('no grouper');
  const out: Group[] = [];
  let offset = 0;
  const opens: Array<number | null> = [];
  for (const line of lines) {
    g.push(line, offset, out);
    offset += line.length + 1;
    opens.push(g.openStart);
  }
  const before = out.length;
  g.flush(out);
  return { texts: out.map((o) => o.text), out, flushed: out.length - before, opens };
}

test('java: a stack trace with Caused by and ... N more is one record; openStart is where the open record began', () => {
  const lines = [
    '2024-01-01 12:00:00 ERROR request failed',
    'java.lang.IllegalStateException: boom',
    '\tat com.example.Foo.bar(Foo.java:10)',
    'Caused by: java.io.IOException: disk',
    '\tat com.example.Disk.read(Disk.java:3)',
    '\t... 12 more',
    '2024-01-01 12:00:01 INFO next',
  ];
  const { texts, opens } = feed('java', lines);
  expect(texts).toEqual([lines.slice(0, 6).join('\n'), lines[6]]);
  expect(opens[6]).toBe(lines.slice(0, 6).join('\n').length + 1);
});

test('python: the traceback and its exception line join the record before them', () => {
  const lines = [
    'ERROR:root:handler failed',
    'Traceback (most recent call last):',
    '  File "app.py", line 3, in <module>',
    '    main()',
    'ValueError: bad value',
    'INFO:root:next',
  ];
  expect(feed('python', lines).texts).toEqual([lines.slice(0, 5).join('\n'), 'INFO:root:next']);
});

test('regex first_line; a record over maxBytes is ended first', () => {
  expect(feed('regex', ['[1] a', ' b', '[2] c', ' d'], '^\\[\\d+\\]').texts).toEqual(['[1] a\n b', '[2] c\n d']);
  expect(feed('regex', ['[1] aaaa', ' bbbb', ' cccc'], '^\\[', 12).texts).toEqual(['[1] aaaa', ' bbbb\n cccc']);
});

test('docker json-file: split lines joined, stream and time kept; cri partial lines joined', () => {
  const docker = feed('docker', [
    '{"log":"first half ","stream":"stdout","time":"2024-01-01T00:00:00.5Z"}',
    '{"log":"second half\\n","stream":"stdout","time":"2024-01-01T00:00:00.6Z"}',
    '{"log":"alone\\n","stream":"stderr","time":"2024-01-01T00:00:01Z"}',
  ]);
  expect(docker.texts).toEqual(['first half second half', 'alone']);
  expect(docker.out[0].stream).toBe('stdout');
  expect(docker.out[0].time).toEqual(expect.objectContaining({ seconds: 1704067200, nanoseconds: 500_000_000 }));
  expect(docker.out[1].stream).toBe('stderr');
  expect(docker.flushed).toBe(0);
  const cri = feed('cri', [
    '2024-01-01T00:00:00Z stdout P part one ',
    '2024-01-01T00:00:00Z stdout F part two',
    '2024-01-01T00:00:01Z stderr F whole',
  ]);
  expect(cri.texts).toEqual(['part one part two', 'whole']);
  expect(cri.out.map((o) => o.stream)).toEqual(['stdout', 'stderr']);
});
