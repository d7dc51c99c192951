// Small building blocks: labelled fields, a problem box that shows the API's
// detail and field errors, buttons that show they are working.
import type { Child } from 'hono/jsx/dom';
import { useId, useState } from 'hono/jsx/dom';
import type { Problem } from './api.js';

export function Field(props: {
  label: string;
  name: string;
  type?: string;
  autocomplete?: string;
  required?: boolean;
  value?: string;
  hint?: string;
  inputmode?: 'text' | 'numeric' | 'email';
  autofocus?: boolean;
  problem?: Problem | null;
}) {
  const id = useId();
  const error = props.problem?.errors?.find((e) => e.path === props.name)?.message;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? 'text'}
        autocomplete={props.autocomplete ?? 'off'}
        required={props.required ?? true}
        value={props.value ?? ''}
        inputmode={props.inputmode}
        autofocus={props.autofocus}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={error || props.hint ? `${id}-note` : undefined}
      />
      {error || props.hint ? (
        <small id={`${id}-note`} class={error ? 'field-error' : 'hint'}>
          {error ?? props.hint}
        </small>
      ) : null}
    </div>
  );
}

/** Name, email and a new password: what registration and the first-run admin both ask for (the register rules). */
export function NewAccountFields(props: { problem: Problem | null }) {
  return (
    <>
      <Field label="Name" name="name" autocomplete="name" problem={props.problem} />
      <Field label="Email" name="email" type="email" autocomplete="email" problem={props.problem} />
      <Field
        label="Password"
        name="password"
        type="password"
        autocomplete="new-password"
        hint="8 to 128 characters"
        problem={props.problem}
      />
    </>
  );
}

export function ProblemBox(props: { problem: Problem | null }) {
  if (!props.problem) return null;
  return (
    <div class="problem" role="alert">
      <strong>{props.problem.detail}</strong>
      {props.problem.errors?.length ? (
        <ul>
          {props.problem.errors.map((e) => (
            <li>
              {e.path ? `${e.path}: ` : ''}
              {e.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function Notice(props: { children: Child }) {
  return (
    <div class="notice" role="status">
      {props.children}
    </div>
  );
}

/** The values of a submitted form, by name. */
export function formValues(e: Event): Record<string, string> {
  e.preventDefault();
  const form = e.currentTarget as HTMLFormElement;
  return Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v)]));
}

/** A submit handler that marks the form busy while it runs and keeps its problem. */
export function useSubmit<T extends unknown[]>(run: (...args: T) => Promise<Problem | null | undefined>) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const submit = async (...args: T) => {
    setBusy(true);
    setProblem(null);
    try {
      setProblem((await run(...args)) ?? null);
    } catch (err) {
      setProblem({ status: 0, code: 'network', detail: err instanceof Error ? err.message : 'The request failed' });
    } finally {
      setBusy(false);
    }
  };
  return { busy, problem, setProblem, submit };
}

export function Submit(props: { busy: boolean; children: Child }) {
  return (
    <button type="submit" disabled={props.busy} aria-busy={props.busy ? 'true' : undefined}>
      {props.children}
    </button>
  );
}

/** A card with a heading that names it (a region a screen reader lists). */
export function Section(props: { title: string; children: Child }) {
  const id = useId();
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function Layout(props: { title: string; wide?: boolean; children: Child }) {
  return (
    <div class={props.wide ? 'page wide' : 'page'}>
      <header class="top">
        <a href="/account" class="brand">
          auth-system
        </a>
        <nav aria-label="Pages">
          <a href="/account">Account</a>
          <a href="/console">Console</a>
          <a href="/docs">API docs</a>
        </nav>
      </header>
      <h1>{props.title}</h1>
      {props.children}
    </div>
  );
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');
