// The suite's own precondition: run.sh puts it in a network namespace with only loopback, so no
// browser, broker or fake traffic can leave the machine (E2E_NETNS=0 opts out, and skips this).
import test from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';

test('only loopback is reachable', { skip: process.env.E2E_NETNS !== '1' && 'not run by run.sh in its namespace' }, () => {
  const interfaces = Object.entries(os.networkInterfaces());
  assert.deepEqual(interfaces.map(([name]) => name), ['lo']);
  for (const [, addresses] of interfaces) {
    for (const address of addresses) assert.ok(address.internal, `${address.address} is not loopback`);
  }
});
