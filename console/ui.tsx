/** Small shared pieces: errors, labelled fields, confirmation. */
import type { ComponentChildren } from 'preact';

export function ErrorLine({ error }: { error?: string }) {
  return error ? <p class="error" role="alert">{error}</p> : null;
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
      {hint && <small>{hint}</small>}
    </label>
  );
}

export function splitList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

/** The page's own confirm dialog is modal and keyboard-reachable; good enough for destructive actions. */
export function confirmed(what: string): boolean {
  return window.confirm(what);
}
