// sdf_check: load an SDFormat world or a URDF with libsdformat (the parser Gazebo uses; Debian's
// libsdformat 12 here, SDF 1.9) and print what Gazebo would see, as one JSON object on stdout:
// every error, and worlds -> models -> links -> sensors with their plugins (file, class and the
// plugin's own elements), sensor types, topics, frame ids, camera and lidar sizes, collision
// geometry and friction, visual colours, joints, physics step and lights. URDF models (after
// xacro) come out as "models" at the top level.
//
//   g++ -std=c++17 scripts/ros2/sdf_check.cc $(pkg-config --cflags --libs sdformat12) -o sdf_check
//   sdf_check FILE [--strict]
//
// Exit status: 0 when the file loads with no error, 1 on any error (each also printed on stderr),
// 2 on bad usage. --strict first loads it with warnings and unrecognised elements turned into
// errors and lists those under "strict" (informational: the caller decides which
// Gazebo-only elements it accepts; they never change the exit status).
//
// SDFormat 12 has no Plugins() accessor: plugins are the `plugin` children of the Element, read
// only after HasElement("plugin") (GetElement would create an empty default one).

#include <sdf/sdf.hh>

#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string Quote(const std::string &_s)
{
  std::ostringstream o;
  o << '"';
  for (unsigned char c : _s)
  {
    switch (c)
    {
      case '"': o << "\\\""; break;
      case '\\': o << "\\\\"; break;
      case '\n': o << "\\n"; break;
      case '\r': o << "\\r"; break;
      case '\t': o << "\\t"; break;
      default:
        if (c < 0x20)
        {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          o << buf;
        }
        else
        {
          o << c;
        }
    }
  }
  o << '"';
  return o.str();
}

std::string Num(double _v)
{
  if (!std::isfinite(_v))
    return "null";
  std::ostringstream o;
  o.precision(17);
  o << _v;
  return o.str();
}

std::string Nums(const std::vector<double> &_v)
{
  std::string s = "[";
  for (size_t i = 0; i < _v.size(); ++i)
    s += (i ? "," : "") + Num(_v[i]);
  return s + "]";
}

std::string PoseJson(const ignition::math::Pose3d &_p)
{
  return Nums({_p.Pos().X(), _p.Pos().Y(), _p.Pos().Z(), _p.Rot().Roll(),
               _p.Rot().Pitch(), _p.Rot().Yaw()});
}

/// A child element, or null; never creates one.
sdf::ElementPtr Child(const sdf::ElementPtr &_e, const std::string &_name)
{
  if (!_e || !_e->HasElement(_name))
    return nullptr;
  return _e->GetElement(_name);
}

std::string Text(const sdf::ElementPtr &_e)
{
  if (!_e)
    return "";
  auto v = _e->GetValue();
  return v ? v->GetAsString() : "";
}

/// The `plugin` children of an element: [{"filename", "name", "elements": [[tag, text], ...]}].
std::string PluginsJson(const sdf::ElementPtr &_e)
{
  std::string s = "[";
  bool first = true;
  if (_e && _e->HasElement("plugin"))
  {
    for (auto p = _e->GetElement("plugin"); p; p = p->GetNextElement("plugin"))
    {
      s += first ? "" : ",";
      first = false;
      s += "{\"filename\":" + Quote(p->Get<std::string>("filename")) +
           ",\"name\":" + Quote(p->Get<std::string>("name")) + ",\"elements\":[";
      bool f2 = true;
      for (auto c = p->GetFirstElement(); c; c = c->GetNextElement())
      {
        s += f2 ? "" : ",";
        f2 = false;
        s += "[" + Quote(c->GetName()) + "," + Quote(Text(c)) + "]";
      }
      s += "]}";
    }
  }
  return s + "]";
}

std::string GeometryJson(const sdf::Geometry *_g)
{
  if (!_g)
    return "null";
  switch (_g->Type())
  {
    case sdf::GeometryType::BOX:
    {
      auto v = _g->BoxShape()->Size();
      return "{\"type\":\"box\",\"size\":" + Nums({v.X(), v.Y(), v.Z()}) + "}";
    }
    case sdf::GeometryType::SPHERE:
      return "{\"type\":\"sphere\",\"radius\":" + Num(_g->SphereShape()->Radius()) + "}";
    case sdf::GeometryType::CYLINDER:
      return "{\"type\":\"cylinder\",\"radius\":" + Num(_g->CylinderShape()->Radius()) +
             ",\"length\":" + Num(_g->CylinderShape()->Length()) + "}";
    case sdf::GeometryType::PLANE:
    {
      auto n = _g->PlaneShape()->Normal();
      auto z = _g->PlaneShape()->Size();
      return "{\"type\":\"plane\",\"normal\":" + Nums({n.X(), n.Y(), n.Z()}) +
             ",\"size\":" + Nums({z.X(), z.Y()}) + "}";
    }
    default:
      return "{\"type\":\"other\"}";
  }
}

std::string SensorJson(const sdf::Sensor *_s)
{
  std::string s = "{\"name\":" + Quote(_s->Name()) + ",\"type\":" + Quote(_s->TypeStr()) +
                  ",\"topic\":" + Quote(_s->Topic()) +
                  ",\"update_rate\":" + Num(_s->UpdateRate()) +
                  ",\"pose\":" + PoseJson(_s->RawPose());
  // gz-sensors reads <gz_frame_id> (not in SDF 1.9) for the frame id of its messages.
  auto frame = Child(_s->Element(), "gz_frame_id");
  s += ",\"gz_frame_id\":" + (frame ? Quote(Text(frame)) : std::string("null"));
  if (auto c = _s->CameraSensor())
  {
    s += ",\"camera\":{\"width\":" + std::to_string(c->ImageWidth()) +
         ",\"height\":" + std::to_string(c->ImageHeight()) +
         ",\"horizontal_fov\":" + Num(c->HorizontalFov().Radian()) + "}";
  }
  if (auto l = _s->LidarSensor())
  {
    s += ",\"lidar\":{\"samples\":" + std::to_string(l->HorizontalScanSamples()) +
         ",\"min_angle\":" + Num(l->HorizontalScanMinAngle().Radian()) +
         ",\"max_angle\":" + Num(l->HorizontalScanMaxAngle().Radian()) +
         ",\"range_min\":" + Num(l->RangeMin()) + ",\"range_max\":" + Num(l->RangeMax()) + "}";
  }
  s += ",\"plugins\":" + PluginsJson(_s->Element()) + "}";
  return s;
}

std::string ModelJson(const sdf::Model *_m)
{
  std::string s = "{\"name\":" + Quote(_m->Name()) +
                  ",\"static\":" + (_m->Static() ? "true" : "false") +
                  ",\"pose\":" + PoseJson(_m->RawPose()) +
                  ",\"plugins\":" + PluginsJson(_m->Element()) + ",\"links\":[";
  for (uint64_t i = 0; i < _m->LinkCount(); ++i)
  {
    const sdf::Link *l = _m->LinkByIndex(i);
    s += (i ? "," : "") + std::string("{\"name\":") + Quote(l->Name()) + ",\"collisions\":[";
    for (uint64_t c = 0; c < l->CollisionCount(); ++c)
    {
      const sdf::Collision *col = l->CollisionByIndex(c);
      auto ode = Child(Child(Child(col->Element(), "surface"), "friction"), "ode");
      auto mu = Child(ode, "mu");
      auto mu2 = Child(ode, "mu2");
      s += (c ? "," : "") + std::string("{\"name\":") + Quote(col->Name()) +
           ",\"pose\":" + PoseJson(col->RawPose()) +
           ",\"geometry\":" + GeometryJson(col->Geom()) +
           ",\"mu\":" + (mu ? Num(mu->Get<double>()) : "null") +
           ",\"mu2\":" + (mu2 ? Num(mu2->Get<double>()) : "null") + "}";
    }
    s += "],\"visuals\":[";
    for (uint64_t v = 0; v < l->VisualCount(); ++v)
    {
      const sdf::Visual *vis = l->VisualByIndex(v);
      std::string diffuse = "null";
      if (auto mat = vis->Material())
      {
        auto d = mat->Diffuse();
        diffuse = Nums({d.R(), d.G(), d.B(), d.A()});
      }
      s += (v ? "," : "") + std::string("{\"name\":") + Quote(vis->Name()) +
           ",\"geometry\":" + GeometryJson(vis->Geom()) + ",\"diffuse\":" + diffuse + "}";
    }
    s += "],\"sensors\":[";
    for (uint64_t k = 0; k < l->SensorCount(); ++k)
      s += (k ? "," : "") + SensorJson(l->SensorByIndex(k));
    s += "]}";
  }
  s += "],\"joints\":[";
  for (uint64_t j = 0; j < _m->JointCount(); ++j)
  {
    const sdf::Joint *jt = _m->JointByIndex(j);
    const std::string type = jt->Element() ? jt->Element()->Get<std::string>("type") : "";
    s += (j ? "," : "") + std::string("{\"name\":") + Quote(jt->Name()) +
         ",\"type\":" + Quote(type) + ",\"parent\":" + Quote(jt->ParentLinkName()) +
         ",\"child\":" + Quote(jt->ChildLinkName()) + "}";
  }
  return s + "]}";
}

std::string ErrorsJson(const sdf::Errors &_errors)
{
  std::string s = "[";
  for (size_t i = 0; i < _errors.size(); ++i)
    s += (i ? "," : "") + Quote(_errors[i].Message());
  return s + "]";
}

}  // namespace

int main(int argc, char **argv)
{
  if (argc < 2 || argc > 3 || (argc == 3 && std::string(argv[2]) != "--strict"))
  {
    std::cerr << "usage: sdf_check FILE [--strict]" << std::endl;
    return 2;
  }
  const std::string path = argv[1];
  const bool strict = argc == 3;
  auto root = std::make_unique<sdf::Root>();
  sdf::Errors strictErrors;
  if (strict)
  {
    sdf::ParserConfig config;
    config.SetWarningsPolicy(sdf::EnforcementPolicy::ERR);
    config.SetUnrecognizedElementsPolicy(sdf::EnforcementPolicy::ERR);
    strictErrors = root->Load(path, config);
  }
  // Without strict errors the strict load is the answer (a file loads in about 0.1 s);
  // otherwise load as Gazebo does, with the default policies.
  sdf::Errors errors;
  if (!strict || !strictErrors.empty())
  {
    root = std::make_unique<sdf::Root>();
    errors = root->Load(path);
  }
  for (const auto &e : errors)
    std::cerr << "sdf_check: " << path << ": " << e.Message() << std::endl;

  std::string out = "{\"file\":" + Quote(path) + ",\"errors\":" + ErrorsJson(errors);
  if (strict)
    out += ",\"strict\":" + ErrorsJson(strictErrors);
  out += ",\"version\":" + Quote(root->Version()) + ",\"worlds\":[";
  for (uint64_t w = 0; w < root->WorldCount(); ++w)
  {
    const sdf::World *world = root->WorldByIndex(w);
    out += (w ? "," : "") + std::string("{\"name\":") + Quote(world->Name()) +
           ",\"plugins\":" + PluginsJson(world->Element()) + ",\"physics\":[";
    for (uint64_t p = 0; p < world->PhysicsCount(); ++p)
    {
      const sdf::Physics *ph = world->PhysicsByIndex(p);
      out += (p ? "," : "") + std::string("{\"name\":") + Quote(ph->Name()) +
             ",\"max_step_size\":" + Num(ph->MaxStepSize()) +
             ",\"real_time_factor\":" + Num(ph->RealTimeFactor()) + "}";
    }
    out += "],\"lights\":[";
    for (uint64_t l = 0; l < world->LightCount(); ++l)
    {
      const sdf::Light *light = world->LightByIndex(l);
      const char *type = light->Type() == sdf::LightType::DIRECTIONAL ? "directional"
                         : light->Type() == sdf::LightType::POINT     ? "point"
                         : light->Type() == sdf::LightType::SPOT      ? "spot"
                                                                      : "invalid";
      out += (l ? "," : "") + std::string("{\"name\":") + Quote(light->Name()) +
             ",\"type\":" + Quote(type) + "}";
    }
    out += "],\"models\":[";
    for (uint64_t m = 0; m < world->ModelCount(); ++m)
      out += (m ? "," : "") + ModelJson(world->ModelByIndex(m));
    out += "]}";
  }
  out += "],\"models\":[";
  if (root->Model())
    out += ModelJson(root->Model());
  out += "]}";
  std::cout << out << std::endl;
  return errors.empty() ? 0 : 1;
}
