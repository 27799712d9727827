// The pause before the greeting (early-talker detection) is a setting of each listener: the
// submission ports greet at once by default (smtp.greetingDelayMs 0), the bounce listener pauses
// 100 ms (smtp.bounceGreetingDelayMs), and a longer pause refuses a client that talks within it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pause, RudeClient } from './rude-client.js';
import { startRelayUnderTest, type RelayUnderTest } from './relay-under-test.js';

describe('with the default settings', () => {
  let relay: RelayUnderTest;
  beforeAll(async () => {
    relay = await startRelayUnderTest();
  });
  afterAll(async () => {
    await relay?.stop();
  });

  it('greets on the submission port at once: a client that speaks 60 ms after connecting is served', async () => {
    // smtp-server alone pauses 100 ms and answers such a client 421 "You talk too soon".
    const client = await RudeClient.connect(relay.ports.submission);
    await pause(60);
    client.write('EHLO prompt.test\r\n');
    const seen = await client.until(/^250 /m);
    expect(seen).toMatch(/^220 /m);
    expect(seen).not.toMatch(/too soon/);
    client.write('QUIT\r\n');
    await client.until(/^221 /m);
    relay.assertAlive();
  });

  it('survives clients that reset right after connecting, while the greeting is being written at once', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => RudeClient.connect(relay.ports.submission)));
    for (const client of clients) client.reset();
    await relay.proveHealthy('after resets at the greeting');
  });

  it('still pauses on the bounce listener: a client that talks first is answered 421 and closed', async () => {
    const client = await RudeClient.connect(relay.ports.bounce);
    client.write('EHLO impatient.test\r\n');
    expect(await client.until(/^421 /m)).toMatch(/^421 [^\r\n]*You talk too soon/m);
    expect(await client.closedWithin(2000)).toBe(true);
    relay.assertAlive();
  });
});

describe('with smtp.greetingDelayMs 1500', () => {
  let relay: RelayUnderTest;
  beforeAll(async () => {
    relay = await startRelayUnderTest({ smtp: { greetingDelayMs: 1500 } });
  });
  afterAll(async () => {
    await relay?.stop();
  });

  it('refuses a client that talks 400 ms after connecting, within the pause', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await pause(400);
    client.write('EHLO impatient.test\r\n');
    const seen = await client.until(/^421 /m);
    expect(seen).not.toMatch(/^220 /m);
    expect(seen).toMatch(/^421 [^\r\n]*You talk too soon/m);
    expect(await client.closedWithin(2000)).toBe(true);
  });

  it('greets a patient client after the pause and relays its message', async () => {
    const started = Date.now();
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    client.write('QUIT\r\n');
    await relay.proveHealthy('after a patient greeting');
  });
});
