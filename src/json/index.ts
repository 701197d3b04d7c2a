export { MAX_JSON_DEPTH, RawNumber, decodeUtf8, isJsonObject, parseJson, parseJsonBytes } from './parse.ts';
export { canonicalJson, goJsonString } from './canonical.ts';
