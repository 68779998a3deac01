import { MAX_OPEN_SEALED, fsyncPolicy, sealedFileAction, syncOrder } from './fsync-policy';

test('always: appends wait for their sync, ids follow synced events, and there is no timer', () => {
  expect(fsyncPolicy('always', 1000)).toEqual({ syncBeforeAck: true, idsAfterSync: true, intervalMs: null });
});

test('interval: appends resolve once written, ids go with their events, one tick per interval', () => {
  expect(fsyncPolicy('interval', 250)).toEqual({ syncBeforeAck: false, idsAfterSync: false, intervalMs: 250 });
});

test('a sealed file closes at once unless it waits for an interval sync, and then only up to a bound', () => {
  const always = fsyncPolicy('always', 1000);
  const interval = fsyncPolicy('interval', 1000);
  expect(sealedFileAction(always, true, 0)).toBe('close'); // its append synced it already
  expect(sealedFileAction(interval, false, 0)).toBe('close'); // nothing left to sync
  expect(sealedFileAction(interval, true, 0)).toBe('keep');
  expect(sealedFileAction(interval, true, MAX_OPEN_SEALED - 1)).toBe('keep');
  expect(sealedFileAction(interval, true, MAX_OPEN_SEALED)).toBe('sync-close');
});

test('a tick syncs the id journal after every chunk file', () => {
  expect(syncOrder(new Set([7, 3, 9, 4]), 3)).toEqual([7, 9, 4, 3]);
  expect(syncOrder(new Set([7, 9]), 3)).toEqual([7, 9]); // a clean journal is not synced
  expect(syncOrder(new Set([7, 9]), null)).toEqual([7, 9]);
});
