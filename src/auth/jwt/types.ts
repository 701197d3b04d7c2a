/**
 * What access control reads of the `oidc` and `local_jwt` config (structurally the same as
 * `src/config/jwt.ts`, which auth does not import).
 */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const;

export interface JwtProviderCommon {
  name: string;
  issuer: string;
  clientId: string;
  register: boolean;
  userPrefix?: string;
  usernameClaim?: string;
  rolesClaim?: string;
  channelsClaim?: string;
  disableSession: boolean;
}

export interface OidcProviderSettings extends JwtProviderCommon {
  validationKey?: string;
  callbackUrl?: string;
  scope: string[];
  includeAccess: boolean;
  discoveryUrl?: string;
  disableCfgValidation: boolean;
  disableCallbackState: boolean;
  allowUnsignedProviderTokens: boolean;
}

export interface LocalJwtSettings extends JwtProviderCommon {
  algorithms: string[];
  keys?: Record<string, unknown>[];
  jwksUri?: string;
  skipExpiryCheck: boolean;
}

export interface JwtAuthConfig {
  oidc?: { defaultProvider?: string; providers: Record<string, OidcProviderSettings> };
  localJwt?: Record<string, LocalJwtSettings>;
}
