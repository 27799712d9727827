import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README, refreshedReadme } from '../../scripts/update-readme.js';

describe('README', () => {
  const text = readFileSync(README, 'utf8');

  it('opens with the two commands', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
    expect(firstBlock).toMatch(/^npm start/m);
    expect(firstBlock).toMatch(/^npm test/m);
  });

  it('documents every config key, setting and CLI command as the code defines them (run `npm run docs`)', () => {
    expect(refreshedReadme(text)).toBe(text);
  });
});
