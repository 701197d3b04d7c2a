export { RawNumber, parseJson } from './parse.ts';
export { canonicalJson, goJsonString } from './canonical.ts';
