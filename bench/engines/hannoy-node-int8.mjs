// Ours over a 'int8'-quantized index: the walk reads compact codes, the best k × oversampling
// candidates are rescored with the full vectors (the addon's default oversampling).
import { engineFor } from './hannoy-node.mjs';
export const { version, threadsNominal, build, open, close, modes } = engineFor('int8');
