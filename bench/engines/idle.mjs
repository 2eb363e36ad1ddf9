// An idle Node process: the baseline for private (anonymous) memory.
import { childConfig, writeResult, memFigures } from '../lib/common.mjs';
const cfg = childConfig();
await new Promise((r) => setTimeout(r, 300));
writeResult(cfg, { engine: 'idle-node', node: process.version, memory: memFigures() });
