// Runs as Gradio's js_on_load for one gr.HTML (element, trigger, props, watch are Gradio's). The editor is
// reachable as window.inpaintEditors[id] for the buttons' js handlers (grow, run, ...).
const host = element.querySelector(".ie-host") || element;
const editor = new InpaintEditor(host, { id: props.editor_id, runButton: props.run_button, brush: props.brush_size });
editor.onSelect = (event) => trigger("click", event);
window.inpaintEditors = window.inpaintEditors || {};
window.inpaintEditors[props.editor_id] = editor;
watch("value", () => editor.receive(props.value));
editor.receive(props.value);
