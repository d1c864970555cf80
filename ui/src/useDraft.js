// Saving the draft and publishing it: PATCH /workflows/<id> with the definition, then
// POST .../publish, whose refusal comes back as errors placed on their steps; and the two
// ways back to a version (restore it into the draft, or make it live).
import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError } from "./api.js";
import { stepOfErrorPath } from "./definition.js";

export function useDraft({ api, workflowId, history, announce, setWorkflow, reloadVersions, onRefused }) {
  const { definition, current, change } = history;
  const [saved, setSaved] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState([]); // from the last publish: [{field, message, step}]
  const dirty = definition !== null && JSON.stringify(definition) !== saved;

  // A page left with unsaved changes asks first.
  useEffect(() => {
    if (!dirty) return undefined;
    const warn = (e) => { e.preventDefault(); e.returnValue = ""; };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const errorsByStep = useMemo(() => {
    const by = {};
    for (const e of errors) if (e.step) (by[e.step] ||= []).push(e);
    return by;
  }, [errors]);

  const markSaved = useCallback((def) => setSaved(JSON.stringify(def)), []);

  async function save() {
    const def = current.current;
    setBusy(true);
    try {
      const wf = await api("PATCH", `/workflows/${workflowId}`, { definition: def });
      setWorkflow(wf);
      setSaved(JSON.stringify(def));
      announce("Draft saved.", "success");
      return true;
    } catch (err) {
      announce(`Could not save the draft: ${err.message}`, "error");
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function publish() {
    if (dirty && !(await save())) return false;
    setBusy(true);
    try {
      const version = await api("POST", `/workflows/${workflowId}/publish`);
      setErrors([]);
      setWorkflow((wf) => ({ ...wf, current_version: version.number }));
      reloadVersions();
      announce(`Published version ${version.number}.`, "success");
      return true;
    } catch (err) {
      if (err instanceof ApiError && Array.isArray(err.problem.errors)) {
        const def = current.current;
        const found = err.problem.errors.map((e) => ({ ...e, step: stepOfErrorPath(def, e.field) }));
        setErrors(found);
        const first = found.find((e) => e.step);
        if (first) onRefused(first.step);
        announce(`Not published: ${found.length} problem${found.length === 1 ? "" : "s"} to fix${
          first ? "; they are marked on the steps" : ""}.`, "error");
      } else {
        announce(`Not published: ${err.message}`, "error");
      }
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function restore(version) {
    current.current = version.definition; // what save() sends, before the next render
    change(version.definition);
    if (await save()) announce(`Version ${version.number} restored to the draft: publish it to make it live.`, "success");
  }

  async function makeLive(version) {
    setBusy(true);
    try {
      await api("POST", `/workflows/${workflowId}/rollback`, { version: version.number });
      setWorkflow((wf) => ({ ...wf, current_version: version.number }));
      announce(`Version ${version.number} is live: new runs use it.`, "success");
    } catch (err) {
      announce(`Could not make version ${version.number} live: ${err.message}`, "error");
    } finally {
      setBusy(false);
    }
  }

  // Ctrl+S: saves only what differs from the saved draft.
  const saveIfChanged = () => {
    if (JSON.stringify(current.current) !== saved) save();
  };

  return { dirty, busy, setBusy, errors, errorsByStep, markSaved, save, saveIfChanged, publish,
           restore, makeLive };
}
