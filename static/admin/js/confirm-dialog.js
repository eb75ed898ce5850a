// One accessible confirmation for every action: a modal <dialog> (focus moves into it, Escape and
// Cancel say no, focus returns to the button that opened it). Resolves true only on the OK button.
const dialog = document.getElementById('confirm-dialog');

export function confirmAction({ title, text, ok }) {
  const opener = document.activeElement;
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-text').textContent = text;
  dialog.querySelector('#confirm-ok').textContent = ok;
  dialog.returnValue = 'cancel';
  dialog.showModal();
  // The safe choice has the focus: Enter by habit must not end someone's conversation.
  dialog.querySelector('#confirm-cancel').focus();
  return new Promise(resolve => {
    dialog.addEventListener('close', () => {
      if (opener?.isConnected) opener.focus();
      resolve(dialog.returnValue === 'ok');
    }, { once: true });
  });
}
