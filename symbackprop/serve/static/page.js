// The students' page: log in, read the sheet, type an answer with a live preview, see the verdict.
// Everything from the server that is not the sheet (messages, answers) is shown as text, never as HTML.
"use strict";
const $ = (id) => document.getElementById(id);
let student = null;

function renderMath(root) {
  for (const element of root.querySelectorAll(".math")) {
    katex.render(element.textContent, element,
                 {throwOnError: false, displayMode: element.classList.contains("display")});
  }
}

async function post(url, body) {
  const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify(body)});
  let data;
  try { data = await response.json(); } catch (error) { data = {error: response.statusText}; }
  return [response.status, data];
}

function cell(row, text) { row.insertCell().textContent = text; }

function showAttempt(attempt) {
  const row = $("attempts").tBodies[0].insertRow(0);
  cell(row, new Date(attempt.time).toLocaleString());
  cell(row, attempt.question);
  cell(row, attempt.answer);
  cell(row, attempt.verdict);
}

function preview() {
  const target = $("preview");
  target.replaceChildren();
  $("preview-problem").textContent = "";
  for (const line of $("answer").value.split("\n")) {
    if (!line.trim()) continue;
    const shown = document.createElement("div");
    target.appendChild(shown);
    try {
      katex.render(line, shown, {throwOnError: true, displayMode: true});
    } catch (error) {
      shown.textContent = line;
      $("preview-problem").textContent = "The preview cannot show this line as LaTeX (plain text answers are fine): " + error.message;
    }
  }
}

// A choice per question, worded as the sheet asks it (the sheet's numbered item, math rendered).
function showQuestion(question) {
  const label = document.createElement("label");
  const choice = document.createElement("input");
  choice.type = "radio";
  choice.name = "question";
  choice.value = question.id;
  choice.checked = question.number === 1;
  const words = document.createElement("span");
  const asked = $("sheet").querySelector(`ol > li[value="${question.number}"]`);
  words.append(`${question.number}. `, ...(asked ? [...asked.cloneNode(true).childNodes] : [`Question ${question.number}`]));
  label.append(choice, words);
  $("questions").appendChild(label);
}

function chosenQuestion() {
  const chosen = document.querySelector('input[name="question"]:checked');
  return chosen ? chosen.value : "";
}

async function enter(event) {
  event.preventDefault();
  const who = {student: $("student").value.trim(), code: $("code").value.trim()};
  const [status, data] = await post("/api/student", who);
  if (status !== 200) { $("login-problem").textContent = data.error; return; }
  student = who;
  $("login").hidden = true;
  $("work").hidden = false;
  $("sheet").innerHTML = data.sheet;  // rendered by the server's templates, every value escaped
  renderMath($("sheet"));
  for (const question of data.questions) showQuestion(question);
  for (const attempt of data.attempts) showAttempt(attempt);
}

async function check(event) {
  event.preventDefault();
  const body = {...student, question: chosenQuestion(), answer: $("answer").value};
  $("result").hidden = false;
  $("verdict").textContent = "checking";
  $("message").textContent = "";
  $("first-wrong-line").textContent = "";
  $("diagnosis").replaceChildren();
  const [status, data] = await post("/api/check", body);
  if (status !== 200) {
    $("verdict").textContent = "not checked";
    $("message").textContent = data.error;
    return;
  }
  $("verdict").textContent = data.verdict;
  $("message").textContent = data.message;
  const wrong = data.lines.find((line) => line.verdict !== "correct");
  if (data.lines.length > 1 && wrong) {
    $("first-wrong-line").textContent = `First wrong line: ${wrong.line} (${wrong.text})`;
  }
  for (const item of data.diagnosis) {
    const entry = document.createElement("li");
    entry.textContent = item;
    $("diagnosis").appendChild(entry);
  }
  showAttempt({time: new Date().toISOString(), question: body.question, answer: body.answer, verdict: data.verdict});
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", enter);
  $("answering").addEventListener("submit", check);
  $("answer").addEventListener("input", preview);
});
