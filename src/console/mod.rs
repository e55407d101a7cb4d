//! The interactive console: launch, the terminal loop, and the pieces it is made of. The loop
//! reads keys on one thread, runs jobs on workers, and draws only the latest state; the UI
//! thread never waits on git, network or disk. The terminal is restored on every exit path.

pub mod app;
pub mod clipboard;
pub mod complete;
pub mod config;
pub mod disk;
pub mod jobs;
pub mod keymap;
pub mod launch;
pub mod palette;
pub mod revocation_status;
pub mod screens;
pub mod theme;
pub mod ui;
pub mod unused_marks;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event,
};
use ratatui::crossterm::execute;

pub use app::{App, Context};
pub use launch::ConsoleArgs;
pub use screens::{Screen, ScreenId};

use jobs::{WorkerEvent, Workers};

/// Hands freed heap pages back to the system. Reading a large policy builds a toml_edit tree
/// many times the size of the text and drops it again; glibc keeps such freed memory resident
/// unless asked, which would leave the console at nearly twice its live size.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only returns free memory at the top of glibc's arenas to the
        // system; it touches no live allocation.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Drops `value` on a background thread, then hands the freed memory back. A 10,000-client
/// policy, its tree and the views drawn from it are hundreds of thousands of allocations: freeing
/// them took the UI thread tens of milliseconds per edit. Without the thread, drops in place.
pub fn discard<T: Send + 'static>(value: T) {
    type Bin = std::sync::mpsc::Sender<Box<dyn Send>>;
    static BIN: std::sync::OnceLock<Option<Bin>> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let (sender, receiver) = channel::<Box<dyn Send>>();
        std::thread::Builder::new()
            .name("discard".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    drop(first);
                    while let Ok(next) = receiver.try_recv() {
                        drop(next);
                    }
                    release_free_memory();
                }
            })
            .ok()
            .map(|_| sender)
    });
    match bin {
        Some(bin) => {
            if let Err(returned) = bin.send(Box::new(value)) {
                drop(returned);
            }
        }
        None => drop(value),
    }
}

/// What wakes the loop.
enum LoopEvent {
    Terminal(Event),
    Worker(WorkerEvent),
    Tick,
}

/// Opens the console; returns when the user quits.
pub fn run(args: ConsoleArgs) -> Result<(), String> {
    let _log_guard = start_logging();
    let launched = launch::launch(args)?;
    let launch::Launched {
        context,
        env,
        runtime,
        server,
        replicas,
        ..
    } = launched;
    let mut app = App::start(context);
    let result = run_terminal(&mut app, env);
    if let Some(server) = server {
        runtime.block_on(server.shutdown());
    }
    for replica in replicas {
        runtime.block_on(replica.shutdown());
    }
    result
}

fn start_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = config::log_path()?;
    let dir = path.parent()?;
    std::fs::create_dir_all(dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    installed.ok()?;
    tracing::info!(log = %path.display(), "logging");
    Some(guard)
}

/// Leaves the terminal as it was found, whatever enabled on top of raw mode.
fn restore_terminal() {
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
}

fn run_terminal(app: &mut App, env: jobs::Env) -> Result<(), String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        tracing::error!("panic: {info}");
        previous(info);
    }));
    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableBracketedPaste);
    let mut mouse_on = false;

    let (sender, events) = channel::<LoopEvent>();
    let paused = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(sender.clone(), paused.clone(), stop.clone());
    spawn_ticker(sender.clone(), stop.clone());
    let workers = Workers::start(env, 2, sender, LoopEvent::Worker);

    let result = (|| -> Result<(), String> {
        loop {
            for (id, job) in app.take_jobs() {
                workers.submit(id, job);
            }
            if app.mouse != mouse_on {
                mouse_on = app.mouse;
                let _ = if mouse_on {
                    execute!(std::io::stdout(), EnableMouseCapture)
                } else {
                    execute!(std::io::stdout(), DisableMouseCapture)
                };
            }
            if let Some(text) = app.copied.take() {
                write_osc52(&text);
            }
            if let Some(path) = app.external_edit.take() {
                paused.store(true, Ordering::SeqCst);
                restore_terminal();
                let outcome = run_editor(&path);
                terminal = ratatui::init();
                let _ = execute!(std::io::stdout(), EnableBracketedPaste);
                let _ = terminal.clear();
                paused.store(false, Ordering::SeqCst);
                match outcome {
                    Ok(()) => {
                        app.submit(jobs::Job::Reload);
                    }
                    Err(e) => app.flash(app::Level::Error, e),
                }
                continue;
            }
            terminal
                .draw(|frame| ui::render(frame, app))
                .map_err(|e| format!("cannot draw: {e}"))?;
            if !app.running {
                return Ok(());
            }
            wait(&events, app)?;
        }
    })();
    stop.store(true, Ordering::SeqCst);
    restore_terminal();
    result
}

/// Blocks for the next event, then takes everything else already waiting (one frame for a
/// burst of keys or results).
fn wait(events: &Receiver<LoopEvent>, app: &mut App) -> Result<(), String> {
    let first = match events.recv_timeout(Duration::from_secs(1)) {
        Ok(event) => event,
        Err(RecvTimeoutError::Timeout) => LoopEvent::Tick,
        Err(RecvTimeoutError::Disconnected) => return Err("the input thread stopped".into()),
    };
    handle(app, first);
    while let Ok(event) = events.try_recv() {
        handle(app, event);
    }
    Ok(())
}

fn handle(app: &mut App, event: LoopEvent) {
    match event {
        LoopEvent::Terminal(Event::Key(key)) => app.handle_key(key),
        LoopEvent::Terminal(Event::Paste(text)) => app.handle_paste(&text),
        LoopEvent::Terminal(Event::Mouse(mouse)) => app.handle_mouse(mouse),
        LoopEvent::Terminal(_) => {}
        LoopEvent::Worker(WorkerEvent::Result(_, result)) => app.handle_result(*result),
        LoopEvent::Worker(WorkerEvent::Done(id)) => app.job_done(id),
        LoopEvent::Tick => app.tick(crate::token::clock::unix_now()),
    }
}

fn spawn_input(
    sender: std::sync::mpsc::Sender<LoopEvent>,
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            if paused.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(event) => {
                        if sender.send(LoopEvent::Terminal(event)).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("cannot read terminal input: {e}"),
                },
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("cannot poll terminal input: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    });
}

fn spawn_ticker(sender: std::sync::mpsc::Sender<LoopEvent>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            if sender.send(LoopEvent::Tick).is_err() {
                return;
            }
        }
    });
}

/// Hands the terminal to `$VISUAL` / `$EDITOR` (else vi) on the file.
fn run_editor(path: &std::path::Path) -> Result<(), String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(words)
        .arg(path)
        .status()
        .map_err(|e| format!("cannot run {editor:?} ($VISUAL / $EDITOR): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{editor} exited with {status}; the file was not re-read (f5 re-reads it)"
        ))
    }
}

/// Puts text on the clipboard with the OSC 52 escape sequence (works over SSH).
fn write_osc52(text: &str) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{encoded}\x07");
    let _ = out.flush();
}
